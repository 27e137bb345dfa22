"""What post-training quantization needs to know about CogACT: its groups and its float islands.

A group is a set of weight GEMMs (nn.Linear layers) named by a pattern over the module path of the
rewritten model; the sensitivity analysis quantizes one group at a time and a recipe lists the
groups it quantizes. Every GEMM in no group stays float: the patch embeddings (one Conv each over
the raw image, cheap, and the layer that sees the input's full range) and the action head's
embedders and final layer (an island below).

Islands stay float whatever the recipe. Each is a set of op types and / or a regular expression
over a graph node's name, which the TorchScript exporter builds from the module path that ran the
node (`/llm_backbone/layers.3/input_layernorm/Pow`). The quantizer never quantizes an island's
GEMMs, and the TensorRT lint refuses an island node that reads a dequantized tensor, so a graph
that quantizes one is caught before a device sees it.
"""

from __future__ import annotations

import re

from ...quant.islands import SHARED

# group -> module-path pattern (re.fullmatch against `model.named_modules()` names of nn.Linear layers)
GROUPS = {
    "vision_attention": r"vision_backbone\.\w+\.blocks\.\d+\.attn\.(qkv|proj)",
    "vision_mlp": r"vision_backbone\.\w+\.blocks\.\d+\.mlp\.fc[12]",
    "projector": r"projector\.projector\.\d+",
    "llm_attention": r"llm_backbone\.llm\.model\.layers\.\d+\.self_attn\.[qkvo]_proj",
    "llm_mlp": r"llm_backbone\.llm\.model\.layers\.\d+\.mlp\.(gate|up|down)_proj",
    "dit_blocks": r"action_model\.net\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])",
}

# island -> {"ops": op types, "scope": node-name pattern (re.match), "why": the reason}
ISLANDS = {
    "norms": {"ops": ["LayerNormalization", "RMSNormalization"],
              "scope": r".*/(input_layernorm|post_attention_layernorm|norm)/",
              "why": "layer and RMS norms square and average activations: the mean and variance need float "
                     "range, and an 8-bit input would lose the small channels (field-notes §3)"},
    **SHARED,  # softmax, token_scoring
    "ddim": {"scope": r"(/denoiser)?/[A-Za-z]+(_\d+)?$",
             "why": "the DDIM update, the guidance mix and the cached residual sums are the denoising loop's "
                    "accumulation: pi0's fp16 export fell to cosine -0.55 until it stayed fp32 (field-notes §3)"},
    "action_head_io": {"scope": r"/(denoiser|net)/(x_embedder|z_embedder|t_embedder|final_layer)/",
                       "why": "the projections in and out of the action head carry the 7-D actions and the "
                              "cognition feature themselves: their error is the action error, averaged by no "
                              "later layer"},
}


def group_of(module_path: str) -> str | None:
    return next((g for g, pattern in GROUPS.items() if re.fullmatch(pattern, module_path)), None)

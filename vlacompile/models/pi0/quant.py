"""What post-training quantization needs to know about pi0: its groups and its float islands.

The groups follow pi0's three stacks, as CogACT's follow its three (models/cogact/quant.py says how
a group and an island are matched). Module paths are the rewritten model's, in LeRobot's layout:
a VLM layer dropped under `--expert-pairing kv` leaves its K/V projections in
`language_model.kv_sources`, which the VLM attention group takes with the kept layers' ones.
Every GEMM in no group stays float: SigLIP's patch embedding (the raw image's full range) and the
suffix projections (an island below).

pi0's graphs name nodes by the module whose method ran, which is often not the layer's forward
(`layer.qkv(...)` traces as `/k_proj_3/MatMul`, the expert's loop as `/denoiser/...`); a node keeps
its module by its weight (quant/targets.py), so only the islands need node-name patterns, and each
allows the `_<n>` suffix TorchScript adds to a scope called again.
"""

from __future__ import annotations

import re

from ...quant.islands import SHARED

_SIGLIP = r"paligemma_with_expert\.paligemma\.model\.vision_tower\.vision_model\.encoder\.layers\.\d+"
_VLM = r"paligemma_with_expert\.paligemma\.model\.language_model\.(layers\.\d+|kv_sources\.\d+\.\d+)"
_EXPERT = r"paligemma_with_expert\.gemma_expert\.model\.layers\.\d+"

# group -> module-path pattern (re.fullmatch against `model.named_modules()` names of nn.Linear layers)
GROUPS = {
    "vision_attention": _SIGLIP + r"\.self_attn\.(q|k|v|out)_proj",
    "vision_mlp": _SIGLIP + r"\.mlp\.fc[12]",
    "projector": r"paligemma_with_expert\.paligemma\.model\.multi_modal_projector\.linear",
    "vlm_attention": _VLM + r"\.self_attn\.[qkvo]_proj",
    "vlm_mlp": _VLM + r"\.mlp\.(gate|up|down)_proj",
    "expert_attention": _EXPERT + r"\.self_attn\.[qkvo]_proj",
    "expert_mlp": _EXPERT + r"\.mlp\.(gate|up|down)_proj",
}

_AGAIN = r"(_\d+)?"  # TorchScript's suffix on a scope entered again
ISLANDS = {
    "norms": {"ops": ["LayerNormalization", "RMSNormalization"],
              "scope": rf".*/(input_layernorm|post_attention_layernorm|norm){_AGAIN}/",
              "why": "Gemma's RMSNorms square and average activations, and multiply by (1 + w): the mean needs "
                     "float range, and an 8-bit input would lose the small channels (field-notes §3)"},
    **SHARED,  # softmax, token_scoring
    "flow": {"scope": rf"/denoiser/[A-Za-z]+{_AGAIN}$",
             "why": "the Euler update x + dt * v and the cached branch sums are the flow loop's accumulation, "
                    "ten steps deep; they stay float32 at fp16 already (docs/PI0.md)"},
    "suffix_io": {"scope": rf"/denoiser/(state_proj|action_in_proj|action_time_mlp_in|action_time_mlp_out|"
                           rf"action_out_proj){_AGAIN}/",
                  "why": "the projections in and out of the expert carry the state, the noisy actions, the flow "
                         "time and the velocity themselves: their error is the action error, averaged by no "
                         "later layer"},
}


def group_of(module_path: str) -> str | None:
    return next((g for g, pattern in GROUPS.items() if re.fullmatch(pattern, module_path)), None)

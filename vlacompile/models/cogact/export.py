"""What the exporter and the validator need to know about CogACT (one declaration per family).

CogACT splits into three static, batch-1 graphs whose tensor names are global, so the output of one
is the input of the next under the same name:
  vision: pixels                                   -> visual_tokens
  llm:    visual_tokens, input_ids, cognition_index -> cognition
  dit:    cognition, noise                         -> actions
Graph inputs and outputs are float32 (ids int64) at every precision; a float16 graph casts inside.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...export.islands import swap_layer_norms
from ...export.spec import GraphSpec, TensorSpec
from ...runtime import noise
from .preprocess import constants
from .llm import use_exported_attention
from .vision import Attention

FAMILY = "cogact"
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}

class VisionGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = self.model.projector.projector[0].weight.dtype
        return self.model.visual_tokens(pixels.to(dtype)).float()  # [1, 6, 224, 224] -> [1, 256, D]


class LLMGraph(nn.Module):
    """Prompt ids are right-padded to a fixed length; `cognition_index` is the cognition token's
    index in input_ids, so every position after it is padding."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, visual: torch.Tensor, input_ids: torch.Tensor, cognition_index: torch.Tensor):
        dtype = self.model.llm_backbone.llm.model.embed_tokens.weight.dtype
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        text_valid = positions[None] <= cognition_index[:, None]  # [1, L]
        return self.model.cognition_from_visual(visual.to(dtype), input_ids, text_valid).float()  # [1, D]


class DiTGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, cognition: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.model.act(cognition, noise).float()  # [1, D], [1, 16, 7] -> [1, 16, 7]


def graphs(model) -> list[GraphSpec]:
    """The graphs of `model` (the rewritten one: for pi0 its shapes depend on the passes; here they do not)."""
    cfg = model.cfg
    d, ids_len = cfg.llm.hidden, 1 + cfg.text_len
    chunk = (1, cfg.dit.chunk, cfg.dit.action_dim)
    image = (1, 6, cfg.dino.image, cfg.dino.image)
    return [
        GraphSpec("vision", VisionGraph, (TensorSpec("pixels", image),),
                  (TensorSpec("visual_tokens", (1, cfg.visual_tokens, d)),)),
        GraphSpec("llm", LLMGraph,
                  (TensorSpec("visual_tokens", (1, cfg.visual_tokens, d)), TensorSpec("input_ids", (1, ids_len), "int64"),
                   TensorSpec("cognition_index", (1,), "int64")),
                  (TensorSpec("cognition", (1, d)),)),
        GraphSpec("dit", DiTGraph, (TensorSpec("cognition", (1, d)), TensorSpec("noise", chunk)),
                  (TensorSpec("actions", chunk),)),
    ]


def _keep_rotary_float32(model, buffers: dict) -> None:
    """`Module.to(half)` also rounds the rotary inverse frequencies. At half precision their error
    grows with the position (up to 0.019 in cos/sin at position 290), which moved the token
    selection's relevance scores by 0.005 and swapped near-tied visual tokens. transformers computes
    the tables in float32 from these buffers and rounds only the result, so float32 buffers give
    correctly rounded cos/sin."""
    rotary = model.llm_backbone.llm.model.rotary_emb
    for name, value in buffers.items():
        setattr(rotary, name, value)


def for_export(model, precision: str):
    """A copy of the (rewritten) model as the graphs compute it: attention as plain math with a
    float32 softmax; at fp16 / bf16, weights in half with norms, softmax, DDIM arithmetic and the
    rotary tables in float32 (Llama's RMSNorm already upcasts; the sampler keeps x_t in float32)."""
    out = copy.deepcopy(model).eval()
    use_exported_attention(out.llm_backbone.llm)
    for m in out.modules():
        if isinstance(m, Attention):
            m.explicit = True
    if precision in HALF:
        rotary = {k: v.clone() for k, v in out.llm_backbone.llm.model.rotary_emb.named_buffers()}
        out.to(HALF[precision])
        if out.condition_map is not None:  # 64 x 64 here: float32 costs nothing, and it corrects small errors
            out.condition_map.float()
        swap_layer_norms(out)
        _keep_rotary_float32(out, rotary)
    return out


def pipeline_inputs(policy, sample, noise: torch.Tensor) -> dict[str, torch.Tensor]:
    """The first graphs' inputs for one calibration sample, as the runtime feeds them (prompt right-padded)."""
    image, instruction = sample.load_image(), sample.instruction
    pixels, _ = policy.encode(image, instruction)
    ids, index = policy.tokenizer.prompt(1 + policy.cfg.text_len).padded(instruction)
    return {"pixels": pixels, "input_ids": torch.tensor([ids]), "cognition_index": torch.tensor([index]),
            "noise": noise}


def condition_inputs(policy, samples) -> tuple[torch.Tensor, ...]:
    """The batched inputs of the pass target's `condition` for calibration samples: pixels, right-padded
    prompt ids and the cognition index, as the llm graph takes them."""
    feeds = [pipeline_inputs(policy, s, None) for s in samples]
    return tuple(torch.cat([f[k] for f in feeds]) for k in ("pixels", "input_ids", "cognition_index"))


def reference_tensors(policy, compressed, sample, noise: torch.Tensor) -> dict[str, np.ndarray]:
    """Every graph tensor for one calibration sample, computed by the PyTorch (rewritten) model in float32."""
    inputs = pipeline_inputs(policy, sample, noise)
    pixels, input_ids, cognition_index = inputs["pixels"], inputs["input_ids"], inputs["cognition_index"]
    with torch.no_grad():
        visual = compressed.visual_tokens(pixels)
        cognition = LLMGraph(compressed)(visual, input_ids, cognition_index)
        actions = compressed.act(cognition, noise)
    named = {"pixels": pixels, "visual_tokens": visual, "input_ids": input_ids, "cognition_index": cognition_index,
             "cognition": cognition, "noise": noise, "actions": actions}
    return {k: v.detach().numpy().copy() for k, v in named.items()}


def declarations(policy) -> dict:
    """The manifest entries a deployment needs besides the graphs (files are copied by the exporter):
    every step a client reproduces, as data the runtime reads (docs/CONTRACT.md)."""
    chunk = (1, policy.cfg.dit.chunk, policy.cfg.dit.action_dim)
    return {"pipeline": [g.name for g in graphs(policy.model)],
            "prompt": policy.tokenizer.declaration(1 + policy.cfg.text_len),
            "preprocess": constants(policy.cfg.dino.image),
            "noise": noise.declaration(chunk),
            "actions": {"chunk": policy.cfg.dit.chunk, "dims": policy.cfg.dit.action_dim},
            "postprocess": policy.postprocess}


def reference_actions(policy, compressed, sample, noise: torch.Tensor) -> np.ndarray:
    """Normalized actions [1, 16, 7] of the PyTorch rewritten model on the unpadded prompt (what the
    whole pipeline, padding included, must reproduce)."""
    pixels, ids = policy.encode(sample.load_image(), sample.instruction)
    with torch.no_grad():
        return compressed(pixels, ids, noise).numpy()


FIDELITY_FEATURE = "cognition"  # the cognition token


def fidelity_outputs(policy, model, sample, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cognition feature [D], normalized actions [16, 7]) of `model` (the reference or the rewritten)."""
    pixels, ids = policy.encode(sample.load_image(), sample.instruction)
    cognition = model.cognition(pixels, ids)
    return cognition[0], model.act(cognition, noise)[0]


def report_view(cfg) -> dict:
    """What the build report draws: the image size, the visual token grid, the denoising steps."""
    return {"image": cfg.dino.image, "grid": cfg.dino.image // cfg.dino.patch, "steps": cfg.sampler.steps}


BENCH_MODULES = {"vision": "vision", "llm": "llm", "dit": "action_head"}  # graph -> costs.ModuleCost module


def module_calls(policy, sample, noise, device, dtype) -> dict:
    """Graph name (and "end_to_end") -> call of the uncompressed model on fixed inputs, for `bench`."""
    model = policy.model.to(device, dtype)
    image, instruction = sample.load_image(), sample.instruction
    pixels, ids = (t.to(device) for t in policy.encode(image, instruction))
    pixels, noise = pixels.to(dtype), noise.to(device)
    visual = model.visual_tokens(pixels)
    cognition = model.cognition_from_visual(visual, ids)

    def end_to_end():  # image + instruction -> actions, preprocessing included as on the compiled side
        px, prompt = policy.encode(image, instruction)
        model(px.to(device, dtype), prompt.to(device), noise)

    return {"vision": lambda: model.visual_tokens(pixels), "llm": lambda: model.cognition_from_visual(visual, ids),
            "dit": lambda: model.act(cognition, noise), "end_to_end": end_to_end}


def statistics_json(policy) -> dict:
    """dataset_statistics.json as CogACT releases it (q01 / q99 per dataset)."""
    return policy.statistics


def observation(sample) -> dict:
    """The runtime's predict arguments besides image and instruction (CogACT reads the image only)."""
    return {}


# The family's quantization declaration (groups and float islands) lives in quant.py.
from .quant import GROUPS, ISLANDS, group_of  # noqa: E402, F401

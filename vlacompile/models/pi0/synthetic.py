"""Deterministic synthetic weights for pi0 presets (no weights can be downloaded).

Every tensor is drawn from one seeded generator in state-dict order, so the same seed gives the same
model on any machine running this torch. Choices that keep later tests meaningful:
- no zero output layer: openpi zero-initializes nothing that pi0 outputs through, but a zero head
  would make every parity and caching test pass vacuously, so every weight here is random;
- Gemma's RMSNorm weights sit near 0 (the scale is 1 + w), SigLIP's LayerNorm weights near 1;
- language embeddings have std 1/sqrt(W), so after Gemma's sqrt(W) scaling they are about as large
  as the projected image tokens;
- per-layer residual gains, log-uniform over [0.02, 1], on both stacks' o_proj and down_proj:
  trained LLMs have layers that barely change the residual stream (the premise of layer dropping),
  and i.i.d. random layers do not.
"""

from __future__ import annotations

import math
import re

import torch

LAYER_GAIN_RANGE = (0.02, 1.0)
LAYER_NORMS = {"layer_norm1", "layer_norm2", "post_layernorm"}  # SigLIP: LayerNorm, weight ~ 1
RMS_NORMS = {"input_layernorm", "post_attention_layernorm", "norm"}  # Gemma: (1 + w), weight ~ 0
# The residual-branch outputs of both Gemma stacks: (stack, layer index).
GATED = re.compile(r"\.(language_model|gemma_expert\.model)\.layers\.(\d+)\."
                   r"(?:self_attn\.o_proj|mlp\.down_proj)\.weight$")


def _draw(name: str, shape: torch.Size, g: torch.Generator) -> torch.Tensor:
    def normal(std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=g) * std + mean

    module, leaf = name.rsplit(".", 2)[-2:]
    if module in LAYER_NORMS:
        return normal(0.05, mean=1.0) if leaf == "weight" else normal(0.02)
    if module in RMS_NORMS:
        return normal(0.1)
    if module == "embed_tokens":
        return normal(shape[1] ** -0.5)
    if module == "position_embedding":
        return normal(0.2)
    if leaf == "bias":
        return normal(0.02)
    return normal(1.0 / math.sqrt(math.prod(shape[1:])))  # fan-in scaled Linear / Conv2d weights


def _gains(depth: int, g: torch.Generator) -> torch.Tensor:
    low, high = (math.log(x) for x in LAYER_GAIN_RANGE)
    return torch.exp(torch.empty(depth).uniform_(low, high, generator=g))


def synthesize_state(shapes: dict[str, torch.Size], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    depth = 1 + max(int(m.group(2)) for k in shapes if (m := GATED.search(k)))
    gains = {"language_model": _gains(depth, g), "gemma_expert.model": _gains(depth, g)}
    state = {}
    for name, shape in shapes.items():
        t = _draw(name, shape, g)
        if m := GATED.search(name):
            t = t * gains[m.group(1)][int(m.group(2))]
        state[name] = t
    return state

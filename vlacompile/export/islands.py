"""Float32 islands inside a half-precision graph that every family needs (field-notes §3)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Fp32LayerNorm(nn.Module):
    """A LayerNorm that computes in float32 inside a float16 graph (FP16 overflows in norms)."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        self.shape, self.eps = norm.normalized_shape, norm.eps
        self.weight = None if norm.weight is None else nn.Parameter(norm.weight.detach().float())
        self.bias = None if norm.bias is None else nn.Parameter(norm.bias.detach().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.shape, self.weight, self.bias, self.eps).to(x.dtype)


def swap_layer_norms(module: nn.Module) -> None:
    """Replace every nn.LayerNorm under `module` by its float32 form (after `module.to(half)`)."""
    for name, child in module.named_children():
        if isinstance(child, nn.LayerNorm):
            setattr(module, name, Fp32LayerNorm(child))
        else:
            swap_layer_norms(child)

"""Cached, unrolled denoising (EfficientVLA §3.4).

The family's action sampler (its DenoisingLoop: CogACT's guided DDIM loop of the DiT) is unrolled
for its fixed steps. At steps whose index is a multiple of the interval N each block computes its
attention and MLP outputs and stores them; at the other steps it adds the stored outputs to its
input and does no attention or MLP work. The loop's own constants (step embeddings, solver
coefficients) depend only on the fixed schedule, so an exporter folds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .family import target_of
from .record import PassRecord, check_range, count_params, fresh_copy


@dataclass(frozen=True)
class CacheConfig:
    interval: int = 5  # --cache-interval: blocks recompute every N steps


class CachedDenoiser(nn.Module):
    """Installed as the model's sampler (PassTarget.install_denoiser); the sampler's weights stay
    where they were and come in as `net` at every call."""

    def __init__(self, loop: nn.Module, interval: int):
        super().__init__()
        self.loop, self.interval = loop, interval

    @property
    def steps(self) -> int:
        return self.loop.steps

    def computes(self, step: int) -> bool:
        return step % self.interval == 0

    def forward(self, net, condition, noise: torch.Tensor) -> torch.Tensor:
        """`condition`: whatever the family's loop starts from (CogACT: the cognition feature;
        pi0: the prefix cache and the state)."""
        loop = self.loop
        x, context = loop.start(net, condition, noise)
        cache = [None] * loop.depth(net)
        for s in range(loop.steps):
            h = loop.embed(net, x, s, context)
            for j in range(len(cache)):
                if self.computes(s):
                    cache[j] = loop.branches(net, j, h, context)
                attn, mlp = cache[j]
                h = h + attn + mlp
            x = loop.update(net, x, h, s, context)
        return x


def apply(model, cfg: CacheConfig, calib=None):
    out = fresh_copy(model)
    target = target_of(out)
    denoiser = CachedDenoiser(target.denoising_loop(), cfg.interval)
    check_range("--cache-interval", cfg.interval, 1, denoiser.steps, "recompute at least once per loop")
    target.install_denoiser(denoiser)
    computing = [s for s in range(denoiser.steps) if denoiser.computes(s)]
    return out, PassRecord("cache", {"interval": cfg.interval}, count_params(model), count_params(out),
                           {"computing_steps": computing, "steps": denoiser.steps})

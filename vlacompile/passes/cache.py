"""Cached, unrolled denoising (EfficientVLA §3.4).

The DDIM loop is unrolled for its fixed steps with the guidance batch. At steps whose index is a
multiple of the interval N each DiT block computes its attention and MLP outputs and stores them;
at the other steps it adds the stored outputs to its input and does no attention or MLP work.
Timestep embeddings and DDIM coefficients depend only on the fixed schedule, so they are constants
(buffers and Python floats) that an exporter folds. DDIM arithmetic stays in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.cogact.sampler import ddim_steps, ddim_update, guidance_condition, guided_eps
from .record import PassRecord, check_range, count_params, fresh_copy


@dataclass(frozen=True)
class CacheConfig:
    interval: int = 5  # --cache-interval: blocks recompute every N steps


class CachedDenoiser(nn.Module):
    """Installed as `action_model.denoiser`; the DiT weights stay in `action_model.net`."""

    def __init__(self, net, sampler, interval: int):
        super().__init__()
        self.steps, self.interval, self.scale = ddim_steps(sampler), interval, sampler.cfg_scale
        with torch.no_grad():
            t = torch.tensor([float(s.t) for s in self.steps], device=net.positional_embedding.device)
            self.register_buffer("t_emb", net.t_embedder(t), persistent=False)  # [steps, W]

    def computes(self, step: int) -> bool:
        return step % self.interval == 0

    def forward(self, net, cognition: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        dtype = net.positional_embedding.dtype
        z = guidance_condition(net, cognition.to(dtype))  # [2B, 1, C]
        x, cache = noise.float(), [None] * len(net.blocks)
        for s, step in enumerate(self.steps):
            h = net.embed(torch.cat([x, x]).to(dtype), self.t_emb[s].expand(z.shape[0], -1), z)
            for j, block in enumerate(net.blocks):
                if self.computes(s):
                    attn = block.attn_branch(h)
                    mlp = block.mlp_branch(h + attn)
                    cache[j] = (attn, mlp)
                attn, mlp = cache[j]
                h = h + attn + mlp
            x = ddim_update(x, guided_eps(net.head(h), self.scale), step)
        return x


def apply(model, cfg: CacheConfig, calib=None):
    check_range("--cache-interval", cfg.interval, 1, model.cfg.sampler.steps, "recompute at least once per loop")
    out = fresh_copy(model)
    denoiser = CachedDenoiser(out.action_model.net, out.cfg.sampler, cfg.interval)
    out.action_model.denoiser = denoiser
    computing = [s for s in range(len(denoiser.steps)) if denoiser.computes(s)]
    return out, PassRecord("cache", {"interval": cfg.interval}, count_params(model), count_params(out),
                           {"computing_steps": computing, "steps": len(denoiser.steps)})

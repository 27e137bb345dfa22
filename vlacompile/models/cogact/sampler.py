"""DDIM sampling with classifier-free guidance, as CogACT runs it (field-notes §1, Sampling).

CogACT respaces the 100-step `squaredcos_cap_v2` schedule to 10 DDIM steps (timesteps 90..0, the
model sees the original values), eta 0, no x0 clipping. The guidance batch is [cond, uncond]; both
halves advance with the same guided eps, so only one half is carried here.
The schedule is computed in float64 and the update arithmetic stays in float32 whatever precision
the DiT runs in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import SamplerConfig


@dataclass(frozen=True)
class DDIMStep:
    t: int  # original training timestep the model sees
    alpha_bar: float
    alpha_bar_prev: float  # 1.0 after the last step, so the result is the predicted x0


def cosine_alphas_cumprod(train_steps: int, max_beta: float = 0.999) -> list[float]:
    """`squaredcos_cap_v2` (improved-diffusion's cosine schedule), in float64."""

    def alpha_bar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    out, prod = [], 1.0
    for i in range(train_steps):
        beta = min(1 - alpha_bar((i + 1) / train_steps) / alpha_bar(i / train_steps), max_beta)
        prod *= 1 - beta
        out.append(prod)
    return out


def ddim_steps(cfg: SamplerConfig) -> list[DDIMStep]:
    if cfg.schedule != "squaredcos_cap_v2":
        raise ValueError(f"unsupported noise schedule {cfg.schedule!r}")
    abar = cosine_alphas_cumprod(cfg.train_steps)
    ts = cfg.timesteps
    prev = [abar[t] for t in ts[1:]] + [1.0]
    return [DDIMStep(t, abar[t], p) for t, p in zip(ts, prev)]


def ddim_update(x: torch.Tensor, eps: torch.Tensor, step: DDIMStep) -> torch.Tensor:
    """One eta=0 DDIM step in float32: predict x0 from eps, then move to the previous timestep."""
    x0 = (x - math.sqrt(1 - step.alpha_bar) * eps) / math.sqrt(step.alpha_bar)
    return math.sqrt(step.alpha_bar_prev) * x0 + math.sqrt(1 - step.alpha_bar_prev) * eps


def guidance_condition(net, cognition: torch.Tensor) -> torch.Tensor:
    """[B, C] cognition -> [2B, 1, C]: the conditional half, then the learned unconditional vector."""
    uncond = net.z_embedder.uncondition.expand(cognition.shape[0], -1)
    return torch.cat([cognition, uncond.to(cognition.dtype)])[:, None]


def guided_eps(eps_both: torch.Tensor, scale: float) -> torch.Tensor:
    cond, uncond = eps_both.float().chunk(2)
    return uncond + scale * (cond - uncond)


@torch.no_grad()
def sample_actions(net, cognition: torch.Tensor, noise: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor:
    """Cognition [B, C] and initial noise [B, 16, 7] -> normalized actions [B, 16, 7] (float32)."""
    dtype = net.positional_embedding.dtype
    z = guidance_condition(net, cognition.to(dtype))
    x = noise.float()
    for step in ddim_steps(cfg):
        t = torch.full((z.shape[0],), step.t, dtype=torch.float32, device=x.device)
        eps = guided_eps(net(torch.cat([x, x]).to(dtype), t, z), cfg.cfg_scale)
        x = ddim_update(x, eps, step)
    return x

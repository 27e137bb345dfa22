"""Flow-matching sampling: Euler from t = 1 (noise) to t = 0 (actions), as openpi and LeRobot run it.

openpi's convention is the reverse of the pi0 paper: x_t = t * noise + (1 - t) * actions and the
network predicts u = noise - actions, so each step is x <- x + dt * v with dt = -1 / steps.
The state x stays in float32 whatever precision the network runs in (field-notes §3).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

# velocity(x_t [B, H, A] float32, t [B] float32, step index) -> v [B, H, A]
Velocity = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def flow_times(steps: int) -> list[float]:
    """1.0, 0.9, ..., 0.1 for 10 steps: LeRobot's `1.0 + step * dt` in float64, then float32 (euler_integrate)."""
    dt = -1.0 / steps
    return [1.0 + k * dt for k in range(steps)]


def time_embedding(t: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """pi0's sinusoidal time embedding: t [B] -> [sin(2 pi t / period), cos(...)] [B, dim] in float32.

    period = min_period * (max_period / min_period) ** f for f = linspace(0, 1, dim / 2). Computed in
    float64 as openpi's and LeRobot's `create_sinusoidal_pos_embedding` do: the argument reaches
    2 pi / 4e-3 ~ 1571, where float32 would lose about 1e-4. It depends on t alone, so an export with
    the 10 steps unrolled can fold it to constants.
    """
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * math.pi / period)[None, :] * t.double()[:, None]  # [B, dim / 2]
    return torch.cat([angle.sin(), angle.cos()], dim=-1).float()


@torch.no_grad()
def euler(velocity: Velocity, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """Initial noise [B, H, A] -> x_0 [B, H, A] float32 after `steps` Euler steps of dt = -1 / steps."""
    dt = -1.0 / steps
    x = noise.float()
    for step, t in enumerate(flow_times(steps)):
        tt = torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device)
        x = x + dt * velocity(x, tt, step).float()
    return x

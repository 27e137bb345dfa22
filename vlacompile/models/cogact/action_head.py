"""CogACT's diffusion transformer action head, with in-context conditioning (not adaLN).

Key names follow the released `action_model.net.*` weights, including the history embedder that
the released forward never runs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import DiTConfig
from .vision import Attention, Mlp

LN_EPS = 1e-6


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding, [cos, sin] order as in DiT. [N] -> [N, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class LinearEmbedder(nn.Module):
    def __init__(self, in_dim: int, width: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, freq_dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))  # [N] -> [N, W]


class ConditionEmbedder(nn.Module):
    """Cognition feature -> one conditioning token; `uncondition` is the learned CFG null input."""

    def __init__(self, cond_dim: int, width: int):
        super().__init__()
        self.linear = nn.Linear(cond_dim, width)
        self.uncondition = nn.Parameter(torch.zeros(1, cond_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)  # [N, 1, C] -> [N, 1, W]


class DiTBlock(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, elementwise_affine=False, eps=LN_EPS)
        self.attn = Attention(cfg.width, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.width, elementwise_affine=False, eps=LN_EPS)
        self.mlp = Mlp(cfg.width, cfg.mlp_ratio * cfg.width, gelu_tanh=True)

    # The two residual branches are separate methods so the caching pass can reuse their outputs.
    def attn_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.norm1(x))

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_branch(x)
        return x + self.mlp_branch(x)


class FinalLayer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm_final = nn.LayerNorm(cfg.width, elementwise_affine=False, eps=LN_EPS)
        self.linear = nn.Linear(cfg.width, cfg.action_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm_final(x))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        self.x_embedder = LinearEmbedder(cfg.action_dim, cfg.width)
        self.t_embedder = TimestepEmbedder(cfg.width, cfg.freq_dim)
        self.z_embedder = ConditionEmbedder(cond_dim, cfg.width)
        self.history_embedder = LinearEmbedder(cfg.action_dim, cfg.width)  # released, never run
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.chunk + 1, cfg.width))
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final_layer = FinalLayer(cfg)

    def embed(self, x: torch.Tensor, t_emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Noisy actions [N, 16, 7], timestep embedding [N, W], condition [N, 1, C] -> [N, 17, W]."""
        c = t_emb.unsqueeze(1) + self.z_embedder(z)  # [N, 1, W]
        return torch.cat([c, self.x_embedder(x)], dim=1) + self.positional_embedding

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.final_layer(h)[:, 1:]  # [N, 17, W] -> [N, 16, 7]; token 0 is the condition

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.embed(x, self.t_embedder(t), z)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class ActionModel(nn.Module):
    """Holds `net`, as the released `action_model` state does."""

    def __init__(self, cfg: DiTConfig, cond_dim: int):
        super().__init__()
        self.net = DiT(cfg, cond_dim)

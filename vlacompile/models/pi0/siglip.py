"""SigLIP vision tower with Hugging Face's key names (`SiglipVisionModel` with no pooling head).

PaliGemma reads every patch token of the last layer after `post_layernorm`; SigLIP has no class
token, so a 224 px image at patch 14 gives 256 tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import attend
from .config import SiglipConfig
from .naming import holder


class SiglipAttention(nn.Module):
    def __init__(self, cfg: SiglipConfig):
        super().__init__()
        self.heads = cfg.heads
        self.q_proj = nn.Linear(cfg.width, cfg.width)
        self.k_proj = nn.Linear(cfg.width, cfg.width)
        self.v_proj = nn.Linear(cfg.width, cfg.width)
        self.out_proj = nn.Linear(cfg.width, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape

        def heads(lin: nn.Linear) -> torch.Tensor:
            return lin(x).view(b, n, self.heads, c // self.heads).transpose(1, 2)  # [B, N, C] -> [B, H, N, Dh]

        return self.out_proj(attend(heads(self.q_proj), heads(self.k_proj), heads(self.v_proj)))


class SiglipMLP(nn.Module):
    def __init__(self, cfg: SiglipConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.width, cfg.mlp)
        self.fc2 = nn.Linear(cfg.mlp, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x), approximate="tanh"))  # big_vision trained with tanh GELU


class SiglipLayer(nn.Module):
    def __init__(self, cfg: SiglipConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.width, eps=cfg.eps)
        self.self_attn = SiglipAttention(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.width, eps=cfg.eps)
        self.mlp = SiglipMLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEmbeddings(nn.Module):
    def __init__(self, cfg: SiglipConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, cfg.width, cfg.patch, cfg.patch)
        self.position_embedding = nn.Embedding(cfg.tokens, cfg.width)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # [B, 3, H, W] -> [B, N, C]
        return x + self.position_embedding.weight


class SiglipVisionModel(nn.Module):
    def __init__(self, cfg: SiglipConfig):
        super().__init__()
        self.embeddings = SiglipEmbeddings(cfg)
        self.encoder = holder(layers=nn.ModuleList(SiglipLayer(cfg) for _ in range(cfg.depth)))
        self.post_layernorm = nn.LayerNorm(cfg.width, eps=cfg.eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


class SiglipVisionTower(nn.Module):
    """Images in [-1, 1], [B, 3, 224, 224] -> patch tokens [B, 256, C]."""

    def __init__(self, cfg: SiglipConfig):
        super().__init__()
        self.vision_model = SiglipVisionModel(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixels)

"""DINOv2 + SigLIP vision tower and the fused GELU MLP projector, with timm's key names.

timm is not usable here (it pulls torchvision), so this is a small ViT that holds exactly the
parameters timm's `vit_large_patch14_reg4_dinov2` and `vit_so400m_patch14_siglip_224` hold at
224 px with `num_classes=0`, so a released state dict loads strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ViTConfig

LN_EPS = 1e-6


class PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.width, cfg.patch, cfg.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, 3, H, W] -> [B, N, C]


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SDPA as MatMul / Softmax / MatMul with the softmax in float32, the form exported graphs use."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)  # [B, H, N, N]
    # .float() first: softmax(dtype=float32) exports as a half Softmax followed by a Cast.
    return scores.float().softmax(dim=-1).to(v.dtype) @ v


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.explicit = False  # plain-math attention for export (for_export sets it)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attend = explicit_attention if self.explicit else F.scaled_dot_product_attention
        out = attend(qkv[0], qkv[1], qkv[2])  # [B, H, N, Dh]
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int, gelu_tanh: bool):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU(approximate="tanh" if gelu_tanh else "none")
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.attn = Attention(cfg.width, cfg.heads)
        self.ls1 = LayerScale(cfg.width) if cfg.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.mlp = Mlp(cfg.width, cfg.mlp, cfg.gelu_tanh)
        self.ls2 = LayerScale(cfg.width) if cfg.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AttentionPoolLatent(nn.Module):
    """SigLIP's MAP head. The VLA reads patch tokens, so this only exists for a strict load."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.latent = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.q = nn.Linear(cfg.width, cfg.width)
        self.kv = nn.Linear(cfg.width, 2 * cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.width)
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.mlp = Mlp(cfg.width, cfg.mlp, cfg.gelu_tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        dh = c // self.heads
        q = self.q(self.latent.expand(b, -1, -1)).view(b, 1, self.heads, dh).transpose(1, 2)
        k, v = self.kv(x).view(b, n, 2, self.heads, dh).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, c)
        out = self.proj(out)
        out = out + self.mlp(self.norm(out))
        return out[:, 0]


class VisionTransformer(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        if cfg.class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        if cfg.registers:
            self.reg_token = nn.Parameter(torch.zeros(1, cfg.registers, cfg.width))
        # Covers the patch tokens only (timm's no_embed_class for DINOv2-reg; SigLIP has no prefix).
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.patch_tokens, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)
        if cfg.attn_pool:
            self.attn_pool = AttentionPoolLatent(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch tokens after the second-to-last block, no final norm (Prismatic's featurizer)."""
        x = self.patch_embed(pixels) + self.pos_embed  # [B, 256, C]
        prefix = [t.expand(x.shape[0], -1, -1) for t in self._prefix_params()]
        x = torch.cat([*prefix, x], dim=1)
        for block in self.blocks[: self.cfg.depth - 1]:
            x = block(x)
        return x[:, self.cfg.prefix_tokens :]

    def _prefix_params(self) -> list[torch.Tensor]:
        return [p for p in (getattr(self, "cls_token", None), getattr(self, "reg_token", None)) if p is not None]


class DinoSigLIPBackbone(nn.Module):
    """Input: both encoders' normalizations stacked on channels, [B, 6, 224, 224] (DINOv2 first)."""

    def __init__(self, dino: ViTConfig, siglip: ViTConfig):
        super().__init__()
        self.dino_featurizer = VisionTransformer(dino)
        self.siglip_featurizer = VisionTransformer(siglip)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        dino = self.dino_featurizer(pixels[:, :3])  # [B, 256, Cd]
        siglip = self.siglip_featurizer(pixels[:, 3:])  # [B, 256, Cs]
        return torch.cat([dino, siglip], dim=2)  # [B, 256, Cd + Cs]


class FusedMLPProjector(nn.Module):
    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.projector = nn.Sequential(
            nn.Linear(vision_dim, 4 * vision_dim),
            nn.GELU(),
            nn.Linear(4 * vision_dim, llm_dim),
            nn.GELU(),
            nn.Linear(llm_dim, llm_dim),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.projector(features)  # [B, 256, Cd + Cs] -> [B, 256, D]

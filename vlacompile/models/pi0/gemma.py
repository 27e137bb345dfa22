"""Gemma decoder layers as pi0 uses them, with Hugging Face's key names, driven by our own loops.

Both stacks (the PaliGemma language model and the action expert) are made of `GemmaLayer`s. A layer
exposes its pieces (`qkv`, `attn_branch`, `mlp_branch`) instead of one opaque forward, because pi0
never runs a plain decoder: the VLM layers fill a K/V cache, the joint forward attends over both
stacks at once, and the flow-step cache reuses the expert's branches. Widths and head counts are
read from the weights, so a pruned MLP or a removed layer needs no config change.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .attention import attend, attention_probs
from .config import GemmaDims


class RMSNorm(nn.Module):
    """Gemma's RMSNorm: x / rms(x) * (1 + w), in float32; w is zero-initialized (identity)."""

    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * (1.0 + self.weight.float())).to(x.dtype)


def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [B, S] -> (cos, sin) [B, S, Dh] in float32, rotate-half layout over the whole head."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    freqs = positions.float()[..., None] * inv_freq  # [B, S, Dh / 2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [B, S, Dh]
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, S, Dh] rotated by the tables [B, S, Dh]; computed in float32, returned in x's dtype."""
    xf = x.float()
    half = xf.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)
    return (xf * cos[:, None] + rotated * sin[:, None]).to(x.dtype)


class GemmaAttention(nn.Module):
    def __init__(self, dims: GemmaDims):
        super().__init__()
        self.head_dim = dims.head_dim
        self.q_proj = nn.Linear(dims.width, dims.heads * dims.head_dim, bias=False)
        self.k_proj = nn.Linear(dims.width, dims.kv_heads * dims.head_dim, bias=False)
        self.v_proj = nn.Linear(dims.width, dims.kv_heads * dims.head_dim, bias=False)
        self.o_proj = nn.Linear(dims.heads * dims.head_dim, dims.width, bias=False)

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Normed input [B, S, W] -> q [B, H, S, Dh], k and v [B, KV, S, Dh]; q and k after RoPE."""
        b, s, _ = x.shape

        def heads(lin: nn.Linear) -> torch.Tensor:
            return lin(x).view(b, s, -1, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj), heads(self.k_proj), heads(self.v_proj)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v


class GemmaMLP(nn.Module):
    """GeGLU: down(gelu_tanh(gate(x)) * up(x)). Its width is whatever gate/up/down hold."""

    def __init__(self, dims: GemmaDims):
        super().__init__()
        self.gate_proj = nn.Linear(dims.width, dims.mlp, bias=False)
        self.up_proj = nn.Linear(dims.width, dims.mlp, bias=False)
        self.down_proj = nn.Linear(dims.mlp, dims.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class GemmaLayer(nn.Module):
    """Pre-norm decoder layer: h + attn(norm(h)), then + mlp(norm(.))."""

    def __init__(self, dims: GemmaDims):
        super().__init__()
        self.input_layernorm = RMSNorm(dims.width, dims.eps)
        self.self_attn = GemmaAttention(dims)
        self.post_attention_layernorm = RMSNorm(dims.width, dims.eps)
        self.mlp = GemmaMLP(dims)

    def qkv(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Residual stream [B, S, W] -> this layer's q [B, H, S, Dh], k, v [B, KV, S, Dh] (after RoPE)."""
        return self.self_attn.project(self.input_layernorm(h), cos, sin)

    # The two residual branches are separate methods so that flow-step caching can reuse their outputs.
    def attn_branch(self, h, cos, sin, allowed, past_k=None, past_v=None, qkv=None) -> torch.Tensor:
        """Attention output [B, S, W]; the queries also read `past_k`/`past_v` [B, KV, P, Dh] if given.

        `allowed` [B, S, P + S]: which of [past keys; own keys] each query may read. `qkv`: this
        layer's qkv(h, cos, sin), when the caller has it already (the prefix keeps k and v).
        """
        q, k, v = self.qkv(h, cos, sin) if qkv is None else qkv
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)  # [B, KV, P + S, Dh]
        return self.self_attn.o_proj(attend(q, k, v, allowed))

    def mlp_branch(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.post_attention_layernorm(h))

    def forward(self, h, cos, sin, allowed, past_k=None, past_v=None, qkv=None) -> torch.Tensor:
        h = h + self.attn_branch(h, cos, sin, allowed, past_k, past_v, qkv)
        return h + self.mlp_branch(h)


class KVSource(nn.Module):
    """What layer drop keeps of a VLM layer whose expert reader stays (pairing "kv"): its input norm
    and K/V projections, applied to the residual stream at its depth. Its key names stay the layer's."""

    def __init__(self, layer: GemmaLayer):
        super().__init__()
        self.input_layernorm = layer.input_layernorm
        self.self_attn = nn.Module()
        self.self_attn.k_proj, self.self_attn.v_proj = layer.self_attn.k_proj, layer.self_attn.v_proj
        self.head_dim = layer.self_attn.head_dim

    def kv(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Residual stream [B, S, W] -> k (after RoPE), v [B, KV, S, Dh], as the full layer computes them."""
        x, (b, s, _) = self.input_layernorm(h), h.shape
        k = self.self_attn.k_proj(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        v = self.self_attn.v_proj(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        return apply_rope(k, cos, sin), v


class GemmaStack(nn.Module):
    """`layers` + final `norm` (+ `embed_tokens` for the language model; the expert has none)."""

    def __init__(self, dims: GemmaDims):
        super().__init__()
        self.head_dim, self.rope_base = dims.head_dim, dims.rope_base
        if dims.vocab:
            self.embed_tokens = nn.Embedding(dims.vocab, dims.width)
        self.layers = nn.ModuleList(GemmaLayer(dims) for _ in range(dims.depth))
        self.norm = RMSNorm(dims.width, dims.eps)
        # Set by layer drop with pairing "kv": K/V sources of dropped layers, keyed by the position of
        # the kept layer they precede (len(layers) for those after the last one).
        self.kv_sources: nn.ModuleDict | None = None

    def sources_before(self, position: int) -> list:
        if self.kv_sources is None:
            return []
        return list(self.kv_sources[str(position)]) if str(position) in self.kv_sources else []

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids [B, L] -> [B, L, W] scaled by sqrt(W) (Gemma scales language embeddings only)."""
        table = self.embed_tokens.weight
        return F.embedding(ids, table) * torch.tensor(table.shape[1] ** 0.5, dtype=table.dtype)

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rope_tables(positions, self.head_dim, self.rope_base)

    def attention_probs(self, i: int, h_in: torch.Tensor, allowed: torch.Tensor, rope) -> torch.Tensor:
        """Layer i's attention probabilities [B, H, S, S] float32 from its input (what token
        selection scores); `allowed` [B, S, S] bool, `rope` this sequence's (cos, sin)."""
        q, k, _ = self.layers[i].qkv(h_in, *rope)
        return attention_probs(q, k, allowed)

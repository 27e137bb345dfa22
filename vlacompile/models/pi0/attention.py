"""Attention as plain math (MatMul / Softmax / MatMul), shared by SigLIP and both Gemma stacks.

Explicit rather than SDPA so that the exported graphs compute exactly this, and so that a fully
masked query row (a padding token) stays finite: masked scores get openpi's large finite negative,
not -inf, and such a row becomes a uniform average that nothing downstream reads.
"""

from __future__ import annotations

import torch

MASK_VALUE = -2.3819763e38  # openpi gemma.py `big_neg`; LeRobot OPENPI_ATTENTION_MASK_VALUE


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Grouped-query attention.

    q [B, H, S, D]; k, v [B, KV, T, D] with H a multiple of KV (1 for Gemma's MQA);
    allowed [B, S, T] bool (True: the query may read that key) or None -> [B, S, H * D].
    """
    b, h, s, d = q.shape
    kv = k.shape[1]
    q = q.reshape(b, kv, h // kv, s, d)  # [B, KV, G, S, D]: each KV head serves G query heads
    scores = (q @ k[:, :, None].transpose(-1, -2)).float() * d**-0.5  # [B, KV, G, S, T]
    if allowed is not None:
        scores = scores.masked_fill(~allowed[:, None, None], MASK_VALUE)
    # Softmax in float32 whatever the model's precision (field-notes §3).
    probs = scores.softmax(dim=-1).to(v.dtype)
    out = (probs @ v[:, :, None]).reshape(b, h, s, d)  # [B, H, S, D]
    return out.transpose(1, 2).reshape(b, s, h * d)


def attention_probs(q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """What `attend` weighs the values by, per query head, for training losses and calibration that read
    attention: q [B, H, S, D], k [B, KV, T, D], allowed [B, S, T] -> [B, H, S, T] float32."""
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # [B, H, T, D]
    scores = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
    return scores.masked_fill(~allowed[:, None], MASK_VALUE).softmax(dim=-1)

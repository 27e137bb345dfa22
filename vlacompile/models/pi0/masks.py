"""pi0's block-causal attention mask and positions (big_vision's `make_attn_mask`, docs/PI0.md §4).

Every token carries an `ar` flag; a token may read the valid tokens whose cumulative `ar` is at most
its own. pi0 uses three blocks:
- prefix (images, then language): ar 0, so the prefix is bidirectional within itself;
- the state token: ar 1, so it reads the prefix and itself;
- the actions: ar 1 for the first, 0 after, so they read the prefix, the state and every action.
No prefix token reads the suffix. Padding (an absent camera, prompt padding) is never read, and a
padding query reads nothing.
"""

from __future__ import annotations

import torch


def block_mask(valid: torch.Tensor, ar: torch.Tensor) -> torch.Tensor:
    """valid [B, N] bool, ar [N] int -> allowed [B, N(query), N(key)] bool."""
    cum = ar.cumsum(-1)
    blocks = cum[None, :] <= cum[:, None]  # [N, N]: key block <= query block
    return blocks[None] & valid[:, None, :] & valid[:, :, None]


def prefix_ar(length: int, device=None) -> torch.Tensor:
    return torch.zeros(length, dtype=torch.long, device=device)


def suffix_ar(horizon: int, device=None) -> torch.Tensor:
    """[state, action 0, action 1, ...] -> [1, 1, 0, ..., 0]."""
    ar = torch.zeros(1 + horizon, dtype=torch.long, device=device)
    ar[:2] = 1
    return ar


def positions(valid: torch.Tensor) -> torch.Tensor:
    """RoPE positions [B, N]: padding takes no position, so masking a token shifts the ones after it.

    The running count is taken in float32 (exact below 2**24 tokens) because TensorRT's CumSum takes
    floating-point input only; the exported prefix graph computes the same."""
    return valid.float().cumsum(-1).long() - 1


def prefix_mask(valid: torch.Tensor) -> torch.Tensor:
    """Prefix validity [B, P] -> [B, P, P]: bidirectional between valid tokens."""
    return block_mask(valid, prefix_ar(valid.shape[1], valid.device))


def suffix_mask(prefix_valid: torch.Tensor, horizon: int) -> torch.Tensor:
    """What each suffix query reads when the prefix is a cache: [B, S, P + S] over [prefix keys; suffix keys]."""
    b, p = prefix_valid.shape
    s = 1 + horizon
    device = prefix_valid.device
    own = block_mask(torch.ones(b, s, dtype=torch.bool, device=device), suffix_ar(horizon, device))
    return torch.cat([prefix_valid[:, None, :].expand(b, s, p), own], dim=-1)


def joint_mask(prefix_valid: torch.Tensor, horizon: int) -> torch.Tensor:
    """The whole [prefix; suffix] sequence in one attention: [B, P + S, P + S]."""
    b = prefix_valid.shape[0]
    valid = torch.cat([prefix_valid, torch.ones(b, 1 + horizon, dtype=torch.bool, device=prefix_valid.device)], dim=1)
    ar = torch.cat([prefix_ar(prefix_valid.shape[1], prefix_valid.device), suffix_ar(horizon, prefix_valid.device)])
    return block_mask(valid, ar)

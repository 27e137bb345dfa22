"""Grow a trained pi0 into a preset with a wider action expert, computing (nearly) the same function.

Net2Net-style (Chen et al., 2016), for a pre-norm residual stack: the new residual channels start at
zero, so that what the old channels compute is unchanged, and training grows them.
- Everything that writes the residual stream (state_proj, action_time_mlp_out, o_proj, down_proj)
  gets zero rows for the new channels: they stay zero until training moves them.
- Everything that reads it (q/k/v, gate/up, action_out_proj) gets random columns for them (the old
  columns' spread): they multiply zeros for now, and without them no gradient would reach the
  writers' new rows.
- New hidden units (MLP, the action-time MLP, action_in_proj's extra outputs) get random producer
  rows and zero consumer columns, for the same two reasons.
- RMSNorm divides by the root mean square over the width: with W_new / W_old times as many channels,
  the new ones zero, it shrinks by sqrt(W_old / W_new), so every expert norm's (1 + w) is scaled by
  that factor to give the old channels the values they had.
- The time embedding's width is the expert's, and pi0's periods are spaced by the width
  (sampler.time_embedding), so the new periods are not a superset of the old ones. action_time_mlp_in's
  time columns are fitted by (ridge) least squares so that, over t in [0, 1], the old rows read the new
  embedding as they read the old one. This is the one step that is not exact: on the shipped
  pi0-tiny the fit's relative RMS error is 2.7% and the velocity keeps a cosine above 0.9999.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from .config import Pi0Config
from .sampler import time_embedding

EXPERT = "paligemma_with_expert.gemma_expert.model."
FIT_POINTS = 40_001  # t grid for the time-column fit: 160 points per cycle of the shortest period (4e-3)
RIDGE = 1e-6  # per point
_SUFFIX = {"state_proj", "action_in_proj", "action_time_mlp_in", "action_time_mlp_out", "action_out_proj"}


def widened(model, preset: Pi0Config):
    """`model` (a Pi0) grown into `preset`, which must differ from its preset in the expert's widths only;
    what its checkpoint's config set (cameras, horizon, prompt length, flow) carries over."""
    from .build import from_state

    old = model.cfg
    new = replace(preset, cameras=old.cameras, horizon=old.horizon, prompt_len=old.prompt_len, flow=old.flow)
    return from_state(new, widen_state(model.state_dict(), old, new), f"{old.name} widened")


def widen_state(state: dict[str, torch.Tensor], old: Pi0Config, new: Pi0Config, seed: int = 0) -> dict:
    """`state` of a model of preset `old` as a state of preset `new`, which differs in the expert's
    width and MLP width only."""
    _check(old, new)
    g = torch.Generator().manual_seed(seed)
    w0, w1 = old.expert.width, new.expert.width
    out = {}
    for key, t in state.items():
        if not (key.startswith(EXPERT) or key.split(".")[0] in _SUFFIX):
            out[key] = t.clone()
            continue
        out[key] = _widen(key, t, w0, w1, old.expert.mlp, new.expert.mlp, g)
    out["action_time_mlp_in.weight"][:w0, w1:] = _fit_time(state["action_time_mlp_in.weight"][:, w0:], old, new)
    return out


def _check(old: Pi0Config, new: Pi0Config) -> None:
    same = replace(new, name=old.name, seed=old.seed, expert=replace(new.expert, width=old.expert.width,
                                                                    mlp=old.expert.mlp))
    if same != old or new.expert.width < old.expert.width or new.expert.mlp < old.expert.mlp:
        raise ValueError(f"{new.name} is not {old.name} with a wider expert")


def _random(shape, like: torch.Tensor, g) -> torch.Tensor:
    return torch.randn(shape, generator=g) * like.float().std()


def _widen(key: str, t: torch.Tensor, w0: int, w1: int, m0: int, m1: int, g) -> torch.Tensor:
    """One tensor, by the role of its rows (writer of the residual, producer of a hidden unit, or
    fixed) and of its columns (reader of the residual, consumer of a hidden unit, or fixed)."""
    name = key.rsplit(".", 1)[0].split(".")[-1]
    if key.endswith("layernorm.weight") or key == EXPERT + "norm.weight":
        scale = math.sqrt(w0 / w1)
        return torch.cat([(1 + t) * scale - 1, torch.full((w1 - w0,), scale - 1, dtype=t.dtype)])
    rows = {"state_proj": ("write", w1), "action_time_mlp_out": ("write", w1), "o_proj": ("write", w1),
            "down_proj": ("write", w1), "action_in_proj": ("make", w1), "action_time_mlp_in": ("make", w1),
            "gate_proj": ("make", m1), "up_proj": ("make", m1)}.get(name, ("fixed", t.shape[0]))
    if t.dim() == 1:
        return torch.cat([t, torch.zeros(rows[1] - t.shape[0], dtype=t.dtype)])
    cols = {"q_proj": ("read", w1), "k_proj": ("read", w1), "v_proj": ("read", w1), "gate_proj": ("read", w1),
            "up_proj": ("read", w1), "action_out_proj": ("read", w1), "down_proj": ("use", m1),
            "action_time_mlp_out": ("use", w1), "action_time_mlp_in": ("use", 2 * w1)}.get(name, ("fixed", t.shape[1]))
    out = torch.zeros(rows[1], cols[1], dtype=t.dtype)
    if name == "action_time_mlp_in":  # columns [action (w) | time (w)]: the action part here, time fitted
        out[:w0, :w0] = t[:, :w0]
        out[w0:, :] = _random((w1 - w0, 2 * w1), t, g)
        return out
    out[:t.shape[0], :t.shape[1]] = t
    if cols[0] == "read":
        out[:t.shape[0], t.shape[1]:] = _random((t.shape[0], cols[1] - t.shape[1]), t, g)
    if rows[0] == "make":
        out[t.shape[0]:, :] = _random((rows[1] - t.shape[0], cols[1]), t, g)
    return out


def _fit_time(weight: torch.Tensor, old: Pi0Config, new: Pi0Config) -> torch.Tensor:
    """[rows, w1]: ridge least-squares weights on the new time embedding reproducing `weight` [rows, w0]
    on the old one over t in [0, 1]. The slow periods (up to 4) are nearly collinear over [0, 1]
    (condition number ~1e8): plain least squares answers with cancelling weights of 1e4-1e5, which
    float32 cannot carry; the ridge keeps them near the old weights' size for 0.2 points more error
    (relative RMS 2.7% against 2.5% on the shipped pi0-tiny)."""
    t = torch.linspace(0.0, 1.0, FIT_POINTS)
    f = old.flow
    e0 = time_embedding(t, old.expert.width, f.min_period, f.max_period).double()
    e1 = time_embedding(t, new.expert.width, f.min_period, f.max_period).double()
    target = e0 @ weight.double().T  # [N, rows]
    gram = e1.T @ e1 + RIDGE * len(t) * torch.eye(e1.shape[1], dtype=torch.float64)
    return torch.linalg.solve(gram, e1.T @ target).T.to(weight.dtype)

"""Structured MLP channel pruning of every language-stack layer's gated MLP (gate, up, down), and of
the action head's gated MLPs where the family has them (pi0's expert), by calibrated importance.

Criterion (recorded by calibration): s_j = mean over tokens of |act(gate_j(x)) * up_j(x)| (SiLU in Llama), times
||W_down[:, j]||_2: how much channel j contributes to the layer's output on real inputs. The
lowest-scoring fraction goes; the result holds smaller dense weights, not a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .family import target_of
from .layer_drop import source_index
from .record import PassRecord, check_range, count_params, fresh_copy


NO_HEAD_MLPS = ("--expert-mlp-sparsity is for pi0's action expert; this model's action head has no gated MLPs to "
                "prune (leave it out)")


@dataclass(frozen=True)
class MlpPruneConfig:
    sparsity: float = 0.25  # fraction of intermediate channels removed
    head_sparsity: float | None = None  # --expert-mlp-sparsity: the action head's MLPs (None: as `sparsity`)


def channels_to_keep(scores: torch.Tensor | None, width: int, sparsity: float) -> torch.Tensor:
    keep = width - int(sparsity * width)
    if scores is None:
        return torch.arange(keep)
    return torch.topk(scores, keep).indices.sort().values


def _sliced(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    weight = linear.weight.index_select(dim, index.to(linear.weight.device)).clone()
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
    out.weight = nn.Parameter(weight)
    return out


def apply(model, cfg: MlpPruneConfig, calib=None):
    check_range("--mlp-sparsity", cfg.sparsity, 0.0, 1.0, "give a fraction such as 0.25", high_open=True)
    head_sparsity = cfg.sparsity if cfg.head_sparsity is None else cfg.head_sparsity
    check_range("--expert-mlp-sparsity", head_sparsity, 0.0, 1.0, "give a fraction such as 0.25", high_open=True)
    out = fresh_copy(model)
    target = target_of(out)
    if cfg.head_sparsity is not None and not target.head_mlps():
        raise UserError(NO_HEAD_MLPS)
    scores = None if calib is None else calib.mlp_scores
    widths = [_prune(layer.mlp, None if scores is None else scores[source_index(layer, i)], cfg.sparsity)
              for i, layer in enumerate(target.layers())]
    head = None if calib is None else calib.head_mlp_scores
    head_widths = [_prune(mlp, None if head is None else head[source_index(mlp, j)], head_sparsity)
                   for j, mlp in enumerate(target.head_mlps())]
    changes = {"intermediate_widths": sorted(set(widths)), "calibrated": calib is not None}
    if head_widths:
        changes["head_intermediate_widths"] = sorted(set(head_widths))
    settings = {"sparsity": cfg.sparsity, **({"head_sparsity": cfg.head_sparsity} if cfg.head_sparsity is not None else {})}
    return out, PassRecord("mlp_prune", settings, count_params(model), count_params(out), changes)


def _prune(mlp: nn.Module, scores: torch.Tensor | None, sparsity: float) -> int:
    """Keep the best-scoring channels of one gated MLP in place; -> its new width."""
    keep = channels_to_keep(scores, mlp.gate_proj.out_features, sparsity)
    mlp.gate_proj, mlp.up_proj = _sliced(mlp.gate_proj, keep, 0), _sliced(mlp.up_proj, keep, 0)
    mlp.down_proj = _sliced(mlp.down_proj, keep, 1)
    mlp.intermediate_size = len(keep)
    return len(keep)

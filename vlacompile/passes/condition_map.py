"""Condition map: an affine correction of the action head's conditioning vector, fitted after the
other passes (not in EfficientVLA; measured in docs/BENCHMARKS.md, "A fitted affine map ...").

A diffusion head conditioned on one vector (CogACT's cognition feature) is far more sensitive to
that vector than its cosine suggests: on cogact-tiny, isotropic noise at cosine 0.99 costs 11
points of closed-loop success. Layer drop, pruning and token selection move the cognition feature
to a cosine of about 0.97, and a linear function of the moved feature predicts about 40% of that
error (held-out relative error 0.24 -> 0.14 on cogact-tiny). This pass fits

    A = argmin ||[c_comp, 1] A - c_ref||^2 + lambda * n * ||A - [I; 0]||^2      (A: [W + 1, W])

on pairs of the compressed and the reference model's vectors over a fit set of frames, and
installs c -> [c, 1] A as a float32 linear layer where the family computes the vector (so it is
part of the exported graph, and parity and the runtimes see it). The ridge pulls A toward the
identity, so a small fit set gives a map near "no map" rather than an overfitted one; lambda is
chosen by the relative error to the reference's vectors on the fit set's held-out episodes (not by
the cosine, which a wrong scale leaves at 1), with the identity itself among the candidates: a map
that does not help on frames it was not fitted on is not installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from ..errors import UserError
from .family import target_of
from .record import PassRecord, check_range, count_params, fresh_copy

DATA = ("auto", "benchmark")  # or a calibration folder
RIDGES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
BATCH = 16  # frames per forward while collecting vectors
NO_CONDITION = ("--condition-map: {model}'s action head reads no single conditioning vector (pi0's expert reads "
                "every VLM layer's K/V); leave it off (--no-condition-map)")


@dataclass(frozen=True)
class ConditionMapConfig:
    data: str = "auto"  # --condition-map-data: benchmark, a calibration folder, or auto (see pipeline.condition_fit)
    episodes: int = 200  # --condition-map-episodes: benchmark episodes of 4 frames (the last 20% choose lambda)


class ConditionMap(nn.Linear):
    """c -> c W^T + b, computed in float32 whatever the model's precision (exporters keep it float32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == self.weight.dtype:  # no Cast nodes in a float32 graph
            return super().forward(x)
        return super().forward(x.to(self.weight.dtype)).to(x.dtype)


@dataclass
class ConditionFit:
    """What the map is fitted on: frames split into fit and held-out episodes, the reference model's
    vectors for both, and how to batch frames into the family's inputs."""

    fit: list  # calibration samples (data.calib) the map is fitted on
    heldout: list  # samples of other episodes, that choose lambda
    encode: Callable[[list], tuple]  # samples -> the pass target's `condition` inputs
    source: str  # what the frames are, for the record
    reference: dict = field(default_factory=dict)  # "fit" / "heldout" -> [N, W], the reference model's vectors


def vectors(target, samples: list, encode, progress: bool = False, desc: str = "condition") -> torch.Tensor:
    """[N, W] conditioning vectors of `samples` through `target`, float64, in batches of BATCH."""
    from tqdm import tqdm

    out = []
    starts = range(0, len(samples), BATCH)
    with torch.no_grad():
        for i in tqdm(starts, desc=desc, unit="batch", disable=not progress):
            out.append(target.condition(*encode(samples[i:i + BATCH])).double())
    return torch.cat(out)


def fit_affine(compressed: torch.Tensor, reference: torch.Tensor, ridge: float) -> torch.Tensor:
    """A [W + 1, W] minimizing ||[C, 1] A - R||^2 + ridge * n * ||A - [I; 0]||^2 (float64)."""
    n, w = compressed.shape
    x = torch.cat([compressed, torch.ones(n, 1, dtype=compressed.dtype)], 1)
    prior = identity(w, compressed.dtype)
    eye = torch.eye(w + 1, dtype=compressed.dtype)
    return torch.linalg.solve(x.T @ x + ridge * n * eye, x.T @ reference + ridge * n * prior)


def identity(w: int, dtype=torch.float64) -> torch.Tensor:
    return torch.cat([torch.eye(w, dtype=dtype), torch.zeros(1, w, dtype=dtype)])


def mapped(c: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return c @ a[:-1] + a[-1]


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).mean().item()


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| over the set: unlike the cosine, it sees a wrong scale too (the DiT does)."""
    return ((a - b).norm() / b.norm()).item()


def choose(fit_c, fit_r, held_c, held_r, ridges) -> tuple[float | None, torch.Tensor, dict]:
    """(lambda, its A, {lambda: held-out relative error}); lambda None and A the identity when no map
    beats the identity."""
    maps = {r: fit_affine(fit_c, fit_r, r) for r in ridges}
    scores = {r: relative_error(mapped(held_c, a), held_r) for r, a in maps.items()}
    best = min(scores, key=scores.get)
    if scores[best] >= relative_error(held_c, held_r):
        return None, identity(fit_c.shape[1]), scores
    return best, maps[best], scores


def module_of(a: torch.Tensor) -> ConditionMap:
    w = a.shape[1]
    module = ConditionMap(w, w)
    with torch.no_grad():
        module.weight.copy_(a[:-1].T.float())
        module.bias.copy_(a[-1].float())
    return module


def install_shape(model) -> None:
    """Install a map of the fitted one's shape, weights arbitrary (costs count meta models)."""
    target = target_of(model)
    width, device = target.condition_width, next(model.parameters()).device
    target.install_condition_map(ConditionMap(width, width, device=device))


def check_episodes(episodes: int) -> None:
    check_range("--condition-map-episodes", episodes, 5, 900, "give at least 5 (4 fit, 1 held out)")


def check_data(data: str) -> None:
    from pathlib import Path

    from ..data.calib import MANIFEST

    if data not in DATA and not (Path(data) / MANIFEST).is_file():
        raise UserError(f"--condition-map-data {data}: no {MANIFEST} there; give a calibration folder, benchmark "
                        "or auto")


def check(model, cfg: ConditionMapConfig) -> None:
    """Refusals that need no data: run before minutes of calibration."""
    if target_of(model).condition_width is None:
        raise UserError(NO_CONDITION.format(model=model.cfg.name))
    check_episodes(cfg.episodes)
    check_data(cfg.data)


def apply(model, cfg: ConditionMapConfig, calib: ConditionFit, progress: bool = False):
    """`calib`: the fit set with the reference model's vectors (pipeline.condition_fit)."""
    check(model, cfg)
    out = fresh_copy(model)
    target = target_of(out)
    fit_c = vectors(target, calib.fit, calib.encode, progress, "condition map: compressed model")
    held_c = vectors(target, calib.heldout, calib.encode, progress, "condition map: held out")
    fit_r, held_r = calib.reference["fit"], calib.reference["heldout"]
    ridge, a, scores = choose(fit_c, fit_r, held_c, held_r, RIDGES)
    if ridge is not None:
        target.install_condition_map(module_of(a))
    changes = {"installed": ridge is not None, "ridge": ridge, "source": calib.source,
               "fit_samples": len(calib.fit), "heldout_samples": len(calib.heldout),
               "heldout_cosine": {"before": mean_cosine(held_c, held_r),
                                  "after": mean_cosine(mapped(held_c, a), held_r)},
               "heldout_error": {"before": relative_error(held_c, held_r),
                                 "after": relative_error(mapped(held_c, a), held_r)},
               "ridge_errors": {str(k): v for k, v in scores.items()},
               "fit_cosine": {"before": mean_cosine(fit_c, fit_r), "after": mean_cosine(mapped(fit_c, a), fit_r)}}
    return out, PassRecord("condition_map", asdict(cfg), count_params(model), count_params(out), changes)

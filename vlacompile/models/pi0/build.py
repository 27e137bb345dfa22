"""Building pi0 models: on the meta device, from a state dict, or with seeded synthetic weights.

Models are built on the meta device and given weights with `assign=True`, so nothing large is
allocated twice (pi0-base is 13 GB in float32). The model holds no non-persistent buffers (RoPE
and the time embedding are computed from positions), so nothing needs rebuilding after a load.
"""

from __future__ import annotations

import functools

import torch

from ...errors import UserError
from ..cogact.build import mismatch_report  # generic; to be hoisted next to the family interface
from .config import PRESETS, Pi0Config
from .model import Pi0
from .synthetic import synthesize_state


def build_meta(cfg: Pi0Config) -> Pi0:
    with torch.device("meta"):
        return Pi0(cfg)


@functools.cache
def state_shapes(preset: str) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in build_meta(PRESETS[preset]).state_dict().items()}


def _report(cfg: Pi0Config, state: dict[str, torch.Tensor], prefix: str) -> str:
    """Mismatches named as in the file: `prefix` is LeRobot's "model." when the file has it."""
    expected = {prefix + k: v for k, v in state_shapes(cfg.name).items()}
    return mismatch_report(expected, {prefix + k: v for k, v in state.items()})


def from_state(cfg: Pi0Config, state: dict[str, torch.Tensor], source: str = "state dict", prefix: str = "") -> Pi0:
    """A model holding exactly `state` (our names, without LeRobot's `model.` prefix); any mismatch is one UserError."""
    problems = _report(cfg, state, prefix)
    if problems:
        raise UserError(f"{source} does not match {cfg.name}: {problems}")
    model = build_meta(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def synthetic(cfg: Pi0Config) -> Pi0:
    """The deterministic synthetic model of a preset (seeded, for tests and benchmarks)."""
    state = synthesize_state(state_shapes(cfg.name), cfg.seed)
    return from_state(cfg, state, f"{cfg.name} synthetic")


def infer_preset(state: dict[str, torch.Tensor], source: str, prefix: str = "") -> Pi0Config:
    """The preset whose keys and shapes the weights match exactly."""
    reports = {}
    for name in PRESETS:
        reports[name] = _report(PRESETS[name], state, prefix)
        if not reports[name]:
            return PRESETS[name]
    closest = min(reports, key=lambda n: len(reports[n]))
    raise UserError(f"{source} matches no pi0 preset ({', '.join(PRESETS)}); closest is {closest}: {reports[closest]}")

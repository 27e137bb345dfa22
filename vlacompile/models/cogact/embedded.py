"""Policies that need no checkpoint folder: the embedded default and seeded synthetic stand-ins.

- `embedded_policy()`: cogact-tiny as trained by `vlacompile train` on the simulator (assets/
  cogact-tiny/: weights, the dataset statistics of its demonstrations, and training.json, the
  record of how it was made, with the weights' sha256, checked at every load; and
  condition_reference.safetensors, its vectors on the condition map's frames, which
  calibration/condition_store.py reads only where weights and frames match).
- `synthetic_policy(name)`: any preset with seeded synthetic weights (see synthetic.py), for speed
  measurements of the full-size presets and for tests that need a model of another shape.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..shipped import check_weights, read_record
from .build import from_state, synthetic
from .config import DEFAULT_PRESET, PRESETS
from .policy import EMBEDDED, TINY_TOKENIZER, CogACTPolicy, read_statistics
from .prompt import PromptTokenizer

WEIGHTS, STATISTICS, RECORD = EMBEDDED / "weights.safetensors", EMBEDDED / "dataset_statistics.json", EMBEDDED / "training.json"


def training_record() -> dict:
    return read_record(RECORD, "the embedded model")


def embedded_policy() -> CogACTPolicy:
    check_weights(WEIGHTS, RECORD, "the embedded model", "make train-default")
    return _policy(PRESETS[DEFAULT_PRESET], WEIGHTS, STATISTICS, DEFAULT_PRESET)


def is_trained_folder(path: Path) -> bool:
    """A folder `vlacompile train` wrote for a CogACT preset (the embedded model's layout)."""
    return all((path / f.name).is_file() for f in (WEIGHTS, STATISTICS, RECORD))


def trained_policy(folder: Path) -> CogACTPolicy:
    """A model `vlacompile train` wrote, checked against its own record like the embedded one."""
    record = folder / RECORD.name
    preset = read_record(record, f"{folder}").get("preset")
    if preset not in PRESETS:
        raise UserError(f"{record}: preset {preset!r} is not a CogACT preset; give a folder `vlacompile train` wrote")
    weights = folder / WEIGHTS.name
    check_weights(weights, record, f"{folder}", f"vlacompile train --preset {preset} --out {folder}")
    return _policy(PRESETS[preset], weights, folder / STATISTICS.name, f"{preset} ({folder})")


def _policy(cfg, weights: Path, statistics: Path, name: str) -> CogACTPolicy:
    from safetensors.torch import load_file

    model = from_state(cfg, load_file(str(weights)), str(weights))
    return CogACTPolicy(model, PromptTokenizer(TINY_TOKENIZER), read_statistics(statistics, cfg.dit.action_dim), name)


def synthetic_policy(name: str) -> CogACTPolicy:
    cfg = PRESETS[name]
    statistics = read_statistics(STATISTICS, cfg.dit.action_dim)
    return CogACTPolicy(synthetic(cfg), PromptTokenizer(TINY_TOKENIZER), statistics, f"{name} (synthetic weights)")

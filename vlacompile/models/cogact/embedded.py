"""Policies that need no checkpoint folder: the embedded default and seeded synthetic stand-ins.

- `embedded_policy()`: cogact-tiny as trained by `vlacompile train` on the simulator (assets/
  cogact-tiny/: weights, the dataset statistics of its demonstrations, and training.json, the
  record of how it was made, with the weights' sha256, checked at every load).
- `synthetic_policy(name)`: any preset with seeded synthetic weights (see synthetic.py), for speed
  measurements of the full-size presets and for tests that need a model of another shape.
"""

from __future__ import annotations

from ..shipped import check_weights, read_record
from .build import from_state, synthetic
from .config import DEFAULT_PRESET, PRESETS
from .policy import EMBEDDED, TINY_TOKENIZER, CogACTPolicy, read_statistics
from .prompt import PromptTokenizer

WEIGHTS, STATISTICS, RECORD = EMBEDDED / "weights.safetensors", EMBEDDED / "dataset_statistics.json", EMBEDDED / "training.json"


def training_record() -> dict:
    return read_record(RECORD, "the embedded model")


def embedded_policy() -> CogACTPolicy:
    from safetensors.torch import load_file

    cfg = PRESETS[DEFAULT_PRESET]
    check_weights(WEIGHTS, RECORD, "the embedded model", f"vlacompile train --out {EMBEDDED}")
    model = from_state(cfg, load_file(str(WEIGHTS)), str(WEIGHTS))
    statistics = read_statistics(STATISTICS, cfg.dit.action_dim)
    return CogACTPolicy(model, PromptTokenizer(TINY_TOKENIZER), statistics, DEFAULT_PRESET)


def synthetic_policy(name: str) -> CogACTPolicy:
    cfg = PRESETS[name]
    statistics = read_statistics(STATISTICS, cfg.dit.action_dim)
    return CogACTPolicy(synthetic(cfg), PromptTokenizer(TINY_TOKENIZER), statistics, f"{name} (synthetic weights)")

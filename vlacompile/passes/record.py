from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..errors import UserError


@dataclass
class PassRecord:
    name: str
    config: dict
    params_before: int
    params_after: int
    changes: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return self.__dict__.copy()


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def fresh_copy(model):
    """Passes never modify their input."""
    return copy.deepcopy(model)


def structure_copy(model):
    """The module tree copied with its parameters and buffers shared, for a rewrite that only
    rearranges modules and sets attributes (a family's keep_layers). The layer search builds a
    candidate per layer per round: deep copies would cost a weight copy each (about 13 GB for
    pi0-base in float32), this costs the modules' Python objects."""
    memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo)


def check_range(name: str, value, low, high, fix: str, high_open: bool = False) -> None:
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bracket = ")" if high_open else "]"
        raise UserError(f"{name} {value} is outside [{low}, {high}{bracket}; {fix}")

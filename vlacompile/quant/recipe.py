"""A mixed-precision recipe: which groups are quantized, and which modules inside them stay float.

Written in the manifest (`quantization.<precision>.recipe`) and read back from a JSON file by
`--quant-recipe FILE`, in the same form, so a measured recipe can be edited and reused:

    {"quantize": ["vision_attention", "vision_mlp", "projector", "llm_attention", "llm_mlp"],
     "keep_float": ["llm_backbone.llm.model.layers.0.mlp"]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

AUTO = "auto"  # measure each group's sensitivity and quantize those the error budget allows
ALL = "all"  # every group


@dataclass(frozen=True)
class Recipe:
    quantize: tuple[str, ...]
    keep_float: tuple[str, ...] = ()
    source: str = "given"  # "given" (a file), "all", or "sensitivity" (measured by this build)
    evidence: dict = field(default_factory=dict, compare=False)  # the sensitivity measurement

    def to_json(self) -> dict:
        return {"quantize": list(self.quantize), "keep_float": list(self.keep_float), "source": self.source}


def parse(value: str | None, groups) -> Recipe | None:
    """--quant-recipe: auto (None: measured at build time), all, or a JSON file."""
    if value in (None, AUTO):
        return None
    if value == ALL:
        return Recipe(tuple(groups), source=ALL)
    path = Path(value)
    if not path.is_file():
        raise UserError(f"--quant-recipe {value}: not {AUTO}, {ALL} or an existing JSON file")
    try:
        data = json.loads(path.read_text())
        quantize, keep = data["quantize"], data.get("keep_float", [])
        if not all(isinstance(x, str) for x in [*quantize, *keep]):
            raise TypeError("names must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a recipe ({exc}); write {{\"quantize\": [groups], \"keep_float\": "
                        f"[module paths]}} with groups from {', '.join(groups)}") from None
    unknown = [g for g in quantize if g not in groups]
    if unknown:
        raise UserError(f"{path}: no group named {', '.join(unknown)}; the groups are {', '.join(groups)}")
    return Recipe(tuple(quantize), tuple(keep), "given")


def check_modules(recipe: Recipe, model, where: str = "--quant-recipe") -> None:
    """Every keep_float entry names a module of the (rewritten) model, or the recipe is a typo."""
    names = {n for n, _ in model.named_modules() if n}
    missing = [k for k in recipe.keep_float if k not in names]
    if missing:
        near = sorted(n for n in names if n.rsplit(".", 1)[0] == missing[0].rsplit(".", 1)[0])[:4]
        hint = (f" (modules beside it: {', '.join(near)})" if near else
                " (names as in model.named_modules(), e.g. llm_backbone.llm.model.layers.0.mlp)")
        raise UserError(f"{where}: keep_float names {missing[0]!r}, which is no module of the rewritten model{hint}")

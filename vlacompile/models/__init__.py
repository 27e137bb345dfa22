"""Model families. `resolve` turns a --model value (a preset name or a checkpoint folder) into a policy.

Only CogACT is declared so far; a second family adds its presets and loaders here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .cogact import DEFAULT_PRESET, PRESETS, CogACTPolicy


def preset_names() -> list[str]:
    return list(PRESETS)


def is_preset(spec: str | None) -> bool:
    return spec is None or spec in PRESETS


def _builtin_policy(name: str, random_weights: bool = False) -> CogACTPolicy:
    from .cogact.embedded import embedded_policy, synthetic_policy

    if random_weights:
        return synthetic_policy(name)
    if name != DEFAULT_PRESET:
        raise UserError(f"{name} has released dimensions and no embedded weights; pass its checkpoint folder "
                        f"with --model PATH (and --preset {name} if it cannot be inferred)")
    return embedded_policy()


def resolve(spec: str | None = None, preset: str | None = None, random_weights: bool = False) -> CogACTPolicy:
    """A preset name with embedded weights (only cogact-tiny, trained here), or a folder in the
    released layout. `random_weights`: any preset with seeded synthetic weights (full-size presets
    for speed measurements only: 7.6 B parameters take about 30 GB of memory in float32)."""
    if preset is not None and preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if is_preset(spec):
        return _builtin_policy(spec or DEFAULT_PRESET, random_weights)
    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"--model {spec}: neither a preset ({', '.join(PRESETS)}) nor a checkpoint folder")
    from .cogact.checkpoint import load_folder

    return load_folder(path, preset)


def resolve_config(spec: str | None = None, preset: str | None = None):
    """The configuration a --model value names, without building weights (for `info`)."""
    if preset is not None:
        resolve_preset = PRESETS.get(preset)
        if resolve_preset is None:
            raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return resolve_preset
    if is_preset(spec):
        return PRESETS[spec or DEFAULT_PRESET]
    from .cogact.build import infer_preset
    from .cogact.checkpoint import find_weights, read_state

    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"--model {spec}: neither a preset ({', '.join(PRESETS)}) nor a checkpoint folder")
    weights = find_weights(path)
    return infer_preset(read_state(weights), str(weights))


def training_recipe(preset: str):
    """How `vlacompile train` trains a small preset from scratch (models/<family>/recipe.py)."""
    from . import pi0
    from .cogact.config import PRESETS as COGACT

    small = [n for n, p in COGACT.items() if p.llm.hidden <= 512] + ["pi0-tiny"]
    if preset not in small:
        raise UserError(f"--preset {preset!r}: training here is for small presets ({', '.join(small)})")
    if preset in pi0.PRESETS:
        from .pi0.policy import TINY_TOKENIZER as PI0_TOKENIZER
        from .pi0.recipe import Pi0Recipe
        from .pi0.tokenizer import PromptTokenizer as Pi0Tokenizer

        return Pi0Recipe(pi0.PRESETS[preset], Pi0Tokenizer(PI0_TOKENIZER))
    from .cogact.policy import TINY_TOKENIZER
    from .cogact.prompt import PromptTokenizer
    from .cogact.recipe import CogACTRecipe

    return CogACTRecipe(COGACT[preset], PromptTokenizer(TINY_TOKENIZER))


def export_declaration(policy):
    """The family's export declaration (graphs, their IO, reference tensors); CogACT's is the only one."""
    from .cogact import export

    return export

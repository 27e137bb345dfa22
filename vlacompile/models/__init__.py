"""Model families. `resolve` turns a --model value (a preset name or a checkpoint folder) into a policy.

Two families: CogACT (the default) and pi0. A preset name says its family; a checkpoint folder says
it by its layout (LeRobot's config.json with "type": "pi0", CogACT's released layout, or the
weights, statistics and training.json that `vlacompile train` writes).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .cogact import DEFAULT_PRESET, PRESETS
from .pi0 import PRESETS as PI0_PRESETS


def preset_names() -> list[str]:
    return [*PRESETS, *PI0_PRESETS]


def is_preset(spec: str | None) -> bool:
    return spec is None or spec in PRESETS or spec in PI0_PRESETS


def _check_preset(preset: str | None) -> None:
    if preset is not None and preset not in preset_names():
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(preset_names())}")


def _builtin_policy(name: str, random_weights: bool = False):
    if name in PI0_PRESETS:
        from .pi0 import embedded as pi0_embedded
        from .pi0.policy import synthetic_policy as pi0_synthetic

        if random_weights:
            return pi0_synthetic(name)
        if name == "pi0-base":
            raise UserError(f"{name} has released dimensions and no embedded weights; pass a LeRobot pi0 folder "
                            "with --model PATH")
        if name != "pi0-tiny":
            raise UserError(f"{name} has no embedded weights; pass a folder `vlacompile train --preset {name}` "
                            "wrote with --model PATH, or add --random-weights")
        return pi0_embedded.embedded_policy()
    from .cogact.embedded import embedded_policy, synthetic_policy

    if random_weights:
        return synthetic_policy(name)
    if name != DEFAULT_PRESET:
        raise UserError(f"{name} has released dimensions and no embedded weights; pass its checkpoint folder "
                        f"with --model PATH (and --preset {name} if it cannot be inferred)")
    return embedded_policy()


def is_pi0_folder(path: Path) -> bool:
    """LeRobot's pretrained folder of a pi0 policy: config.json says "type": "pi0"."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("type") == "pi0"


def _folder(spec: str, preset: str | None) -> Path:
    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"--model {spec}: neither a preset ({', '.join(preset_names())}) nor a checkpoint folder")
    pi0 = is_pi0_folder(path)
    if preset is not None and (preset in PI0_PRESETS) != pi0:
        family = "pi0" if preset in PI0_PRESETS else "CogACT"
        raise UserError(f"--preset {preset} is a {family} preset but {spec} is a "
                        f"{'pi0' if pi0 else 'CogACT'} checkpoint folder; pass a preset of its family")
    return path


def resolve(spec: str | None = None, preset: str | None = None, random_weights: bool = False):
    """A preset name with embedded weights (cogact-tiny and pi0-tiny, trained here), a folder in
    a released layout (CogACT's, or LeRobot's for pi0), or a folder `vlacompile train` wrote.
    `random_weights`: any preset with seeded synthetic weights (full-size presets for speed
    measurements only: CogACT's 7.6 B parameters take about 30 GB of memory in float32)."""
    _check_preset(preset)
    if is_preset(spec):
        return _builtin_policy(spec or DEFAULT_PRESET, random_weights)
    path = _folder(spec, preset)
    if is_pi0_folder(path):
        from .pi0.checkpoint import load_folder as load_pi0

        return load_pi0(path, preset)
    from .cogact.embedded import is_trained_folder, trained_policy

    if is_trained_folder(path):
        return trained_policy(path)
    from .cogact.checkpoint import load_folder

    return load_folder(path, preset)


def resolve_config(spec: str | None = None, preset: str | None = None):
    """The configuration a --model value names, without building weights (for `info`)."""
    _check_preset(preset)
    if preset is not None:
        return PRESETS.get(preset) or PI0_PRESETS[preset]
    if is_preset(spec):
        return PRESETS.get(spec or DEFAULT_PRESET) or PI0_PRESETS[spec]
    path = _folder(spec, preset)
    if is_pi0_folder(path):
        from .pi0.build import infer_preset as infer_pi0
        from .pi0.checkpoint import WEIGHTS, configured, read_weights

        state, prefix = read_weights(path / WEIGHTS, shapes_only=True)
        return configured(path, infer_pi0(state, str(path / WEIGHTS), prefix))
    from .cogact.embedded import is_trained_folder, trained_policy

    if is_trained_folder(path):
        return trained_policy(path).model.cfg  # a tiny preset: loading it is cheap, and checks it
    from .cogact.build import infer_preset
    from .cogact.checkpoint import find_weights, read_state

    weights = find_weights(path)
    return infer_preset(read_state(weights), str(weights))


def compile_counts(cfg) -> tuple[int, int]:
    """(LLM layers, visual tokens): what --layers and --tokens count, for either family."""
    if family(cfg) == "pi0":
        return cfg.vlm.depth, cfg.image_tokens
    return cfg.llm.layers, cfg.visual_tokens


def family(policy_or_cfg) -> str:
    """"pi0" or "cogact", for a policy, a model or a configuration."""
    from .pi0.config import Pi0Config

    cfg = getattr(policy_or_cfg, "cfg", policy_or_cfg)
    return "pi0" if isinstance(cfg, Pi0Config) else "cogact"


def training_recipe(preset: str):
    """How `vlacompile train` trains a small preset from scratch (models/<family>/recipe.py)."""
    from . import pi0
    from .cogact.config import PRESETS as COGACT

    small = [n for n, p in COGACT.items() if p.llm.hidden <= 512] + [n for n, p in pi0.PRESETS.items()
                                                                      if p.vlm.width <= 512]
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
    """The family's export declaration (models/<family>/export.py): graphs, their IO, reference
    tensors and the manifest's entries."""
    if family(policy) == "pi0":
        from .pi0 import export as pi0_export

        return pi0_export
    from .cogact import export

    return export

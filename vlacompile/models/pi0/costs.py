"""Parameters per part of a pi0 preset, counted on the meta device (no weights allocated).

Parts follow the checkpoint: SigLIP `vision`, the linear `projector`, the Gemma `llm` (embedding,
layers, final norm), the action `expert` (layers, final norm) and the `suffix` linears (state_proj,
action_in_proj, action_time_mlp_in/out, action_out_proj). The lm_heads a released file stores are not
part of the model (pi0 never runs them; see checkpoint.py).
"""

from __future__ import annotations

from .config import PRESETS

PARTS = ("vision", "projector", "llm", "expert", "suffix")
_MARKERS = (("vision", ".vision_tower."), ("projector", ".multi_modal_projector."),
            ("llm", ".language_model."), ("expert", ".gemma_expert."))


def part_of(key: str) -> str:
    return next((part for part, marker in _MARKERS if marker in key), "suffix")


def _tally(sizes) -> dict[str, int]:
    counts = dict.fromkeys(PARTS, 0)
    for key, size in sizes:
        counts[part_of(key)] += size
    counts["vlm"] = counts["vision"] + counts["projector"] + counts["llm"]
    counts["total"] = counts["vlm"] + counts["expert"] + counts["suffix"]
    return counts


def param_counts(preset: str) -> dict[str, int]:
    """{part: parameters} plus "vlm" (vision + projector + llm, i.e. PaliGemma) and "total"."""
    from .build import state_shapes

    return _tally((key, shape.numel()) for key, shape in state_shapes(PRESETS[preset].name).items())


def model_param_counts(model) -> dict[str, int]:
    """The same parts for a (possibly rewritten) model, read from its parameters."""
    return _tally((key, p.numel()) for key, p in model.named_parameters())

"""Everything the report shows, as JSON-able data (the HTML embeds it next to the plots)."""

from __future__ import annotations

import numpy as np

from ..models import export_declaration
from ..passes.family import target_of
from .summary import facts, warnings


def selected_tokens(policy, compressed, sample) -> tuple[dict[str, list[int]], dict[int, int]]:
    """(the visual tokens the static selection keeps for one sample, by why they were kept; how many
    visual tokens each kept one stands for, empty when unweighted). pi0: indices over every camera
    slot, the sample's image in the first."""
    import torch

    selector = target_of(compressed).selector()
    if selector is None:
        return {}, {}
    captured, weights = {}, {}

    def grab(module, args):
        backbone, h_in, h_out, valid, _, mask, rope = args
        captured.update(module.groups(backbone, h_in, h_out, valid, mask, rope))
        kept = torch.cat(list(captured.values()), dim=1).sort(dim=-1).values
        log_counts = module.log_counts(h_out, valid, kept)
        if log_counts is not None:
            weights.update(zip(kept[0].tolist(), log_counts[0].exp().round().int().tolist()))

    handle = selector.register_forward_pre_hook(grab)
    try:
        export_declaration(policy).reference_actions(policy, compressed, sample, policy.noise(0))
    finally:
        handle.remove()
    return {why: sorted(int(i) for i in idx[0]) for why, idx in captured.items()}, weights


def report_data(summary: dict, calib_meta: dict, policy, compressed, sample, filmstrips: dict | None = None) -> dict:
    """summary: build.json's content; sample: the calibration sample whose kept tokens are drawn;
    filmstrips: policy name -> recorded episodes of the closed-loop check (the first compiled one is drawn)."""
    compiled_films = [f for name, f in (filmstrips or {}).items() if f and not name.startswith("reference")]
    passes = {p["name"]: p for p in summary["passes"]}
    view = export_declaration(policy).report_view(policy.cfg)
    image = sample.load_image().convert("RGB").resize((view["image"],) * 2)
    kept, stands_for = selected_tokens(policy, compressed, sample)
    drawn = view["grid"] ** 2  # the sample's image; pi0's other camera slots are padding, never kept
    return {
        "model": summary["model"], "compile": summary["compile"],
        "facts": facts(summary), "warnings": warnings(summary),
        "layers": _layers(calib_meta, passes.get("layer_drop", {}).get("changes", {})),
        "tokens": {"image": str(sample.image_path), "instruction": sample.instruction,
                   "grid": view["grid"], "kept": {why: [i for i in idx if i < drawn] for why, idx in kept.items()},
                   "stands_for": {i: n for i, n in stands_for.items() if i < drawn},
                   "relevance_mean": calib_meta["token_relevance_mean"]},
        "dit": {"similarity": calib_meta["dit_similarity"],
                "computing_steps": passes.get("cache", {}).get("changes", {}).get("computing_steps",
                                                                                   list(range(view["steps"]))),
                "interval": (summary["compile"].get("cache") or {"interval": 1})["interval"]},
        "parity": summary["parity"], "fidelity": summary["fidelity"],
        "latency": summary["latency"], "costs": summary["costs"],
        "quantization": summary.get("quantization", {}),  # per precision: recipe, evidence, islands
        "closed_loop": summary.get("closed_loop"),
        "_image": np.asarray(image),  # drawn, not embedded as data
        "_filmstrip": compiled_films[0] if compiled_films else None,
    }


def _layers(calib_meta: dict, changes: dict) -> dict:
    """The layer figure's data: Eq. 1 importance, the dropped and free layers, and with --layer-method
    actions the search that chose them (removal order and the actions' deviation after each removal)."""
    out = {"importance": calib_meta["layer_importance"], "dropped": changes.get("dropped_layers", []),
           "free": changes.get("free_layers", [])}
    if "search_order" in changes:
        out["search"] = {"order": changes["search_order"], "deviation": changes["search_deviation"]}
    return out

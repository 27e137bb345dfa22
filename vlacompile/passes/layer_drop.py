"""Drop the least important LLM layers (EfficientVLA Eq. 1: I_l = 1 - mean cos(h_in, h_out)).

The result is a plain smaller Llama: the kept layers, renumbered, with the config saying so.
"actions" chooses by a greedy search over the calibration samples' actions instead
(calibration/layer_search.py: layers that matter only together, which Eq. 1 scores one at a time).
Two baselines choose the layers otherwise, for ablations: "random" (a seeded random subset) and
"last" (drop the last layers, the usual early-exit choice).

`pairing` matters where another stack reads a layer's K/V (pi0's expert layer l reads VLM layer l):
"drop" drops the reader with the layer; "kv" keeps the dropped layer's K/V projections (norm, k_proj,
v_proj over the residual stream at its depth) so every reader keeps a source. The family says what
it supports (PassTarget.keep_layers), and which layers a pairing makes free to drop
(PassTarget.free_layers: pi0's last VLM layer under "kv", whose output nothing reads); importance
drops those first, so the layers kept are ones that compute something.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from .family import target_of
from .record import PassRecord, check_range, count_params, fresh_copy


METHODS = ("importance", "actions", "random", "last")
PAIRINGS = ("drop", "kv")


@dataclass(frozen=True)
class LayerDropConfig:
    keep: int  # --layers: how many LLM layers remain
    method: str = "importance"  # --layer-method
    seed: int = 0  # random baseline only
    pairing: str = "drop"  # --expert-pairing: what happens to the readers of a dropped layer's K/V


def source_index(layer, position: int) -> int:
    """Index of a decoder layer in the uncompressed model (calibration is keyed by it)."""
    return getattr(layer, "vlacompile_source_index", position)


def layers_to_keep(importance: list[float] | None, n: int, keep: int, method: str = "importance",
                   seed: int = 0, free: tuple[int, ...] = ()) -> list[int]:
    """The `keep` layers that stay, in model order: the most important ones (without calibration, the
    first ones), a seeded random subset, or the first `keep` ("last": the last n - keep go). `free`
    layers (dropping them changes nothing) rank below every other for importance."""
    if method == "random":
        import torch

        return sorted(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep].tolist())
    if importance is None or method == "last":
        return list(range(keep))
    ranked = sorted(range(n), key=lambda i: (i not in free, importance[i]), reverse=True)
    return sorted(ranked[:keep])


def apply(model, cfg: LayerDropConfig, calib=None):
    source_target = target_of(model)
    layers = source_target.layers()
    if cfg.method not in METHODS:
        raise UserError(f"--layer-method {cfg.method!r} is not one of {', '.join(METHODS)}")
    if cfg.pairing not in PAIRINGS:
        raise UserError(f"--expert-pairing {cfg.pairing!r} is not one of {', '.join(PAIRINGS)}")
    check_range("--layers", cfg.keep, 1, len(layers), f"keep between 1 and the model's {len(layers)} layers")
    sources = [source_index(layer, i) for i, layer in enumerate(layers)]
    free = tuple(source_target.free_layers(cfg.pairing))
    search = _searched(calib, cfg, len(layers)) if cfg.method == "actions" and calib is not None else {}
    if search:  # the search's first n - keep go (it drops free layers first)
        gone = search["order"][: len(layers) - cfg.keep]
        kept = [i for i, s in enumerate(sources) if s not in gone]
    else:
        importance = None if calib is None else [calib.layer_importance[s] for s in sources]
        kept = layers_to_keep(importance, len(layers), cfg.keep, cfg.method, cfg.seed, free)
    out = fresh_copy(model)
    target = target_of(out)
    for i, layer in enumerate(target.layers()):
        layer.vlacompile_source_index = sources[i]
    target.keep_layers(kept, cfg.pairing)
    dropped = [sources[i] for i in range(len(layers)) if i not in kept]
    settings = {"keep": cfg.keep, "method": cfg.method, **({"pairing": cfg.pairing} if cfg.pairing != "drop" else {})}
    return out, PassRecord("layer_drop", settings, count_params(model), count_params(out),
                           {"dropped_layers": dropped, "kept_layers": [sources[i] for i in kept],
                            "calibrated": calib is not None,
                            **({"search_order": search["order"][: len(layers) - cfg.keep],
                                "search_deviation": search["deviation"][: len(layers) - cfg.keep]} if search else {}),
                            **({"free_layers": [sources[i] for i in free]} if free else {})})


def _searched(calib, cfg: LayerDropConfig, n: int) -> dict:
    """The calibration's layer search under cfg.pairing, refused unless deep enough for cfg.keep
    (pipeline.search_layers makes it so before the passes run)."""
    search = calib.layer_search(cfg.pairing)
    if len(search.get("order", [])) < n - cfg.keep:
        raise UserError(f"the calibration's layer search under pairing {cfg.pairing} drops "
                        f"{len(search.get('order', []))} layers, not {n - cfg.keep}; search deeper first "
                        "(pipeline.search_layers: build, export and eval do)")
    return search

"""The steps the commands chain: calibration data -> calibration (stored, reused) -> rewrite."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import calibration
from .data.calib import load_calib, split_heldout
from .passes.family import target_of
from .passes.token_select import check_select_layer, resolve_weighting

DEFAULT_CALIB = Path("calib_data")


def calibrate(policy, calib_dir=DEFAULT_CALIB, cache_dir=calibration.DEFAULT_DIR, stored=None, select_layer=2,
              progress=True, force=False):
    """-> (Calibration, reused, held-out samples). `stored` is an explicit calibration folder."""
    check_select_layer(select_layer, len(target_of(policy.model).layers()))
    calib_set, heldout = split_heldout(load_calib(calib_dir), where=calib_dir)
    if stored is not None:
        return calibration.load(stored, policy), True, heldout
    calib, reused = calibration.load_or_run(policy, calib_set, cache_dir, select_layer, progress, force)
    return calib, reused, heldout


def search_layers(policy, config, calib, calib_set, progress=True, persist=True) -> None:
    """`--layer-method actions`: search (or continue the stored search) as deep as --layers needs.
    An explicit --calib-result is not rewritten (persist=False): the search then lives in memory."""
    layers, n = config.layers, len(target_of(policy.model).layers())
    if layers is not None and layers.method == "actions" and 1 <= layers.keep < n:  # else layer drop refuses it
        drop = n - layers.keep
        calibration.search_layers(calib, policy, calib_set, layers.pairing, drop, progress, persist)


@dataclass
class Compiled:
    """A rewritten model and what it came from."""

    policy: object  # the reference policy (uncompressed)
    model: object  # the rewritten CogACT module
    config: object  # CompressConfig
    records: list
    calib: object
    reused: bool  # the calibration came from the cache
    heldout: list  # samples never calibrated on
    calib_set: list = field(default_factory=list)  # the samples calibrated on (int8 / fp8 calibrate on them too)
    calib_dir: Path = DEFAULT_CALIB

    def quant_data(self) -> tuple:
        """What export needs for int8 / fp8: (calibration samples, held-out samples, their folder)."""
        return self.calib_set, self.heldout, self.calib_dir

    def provenance(self) -> dict:
        """The manifest's "compile" and "calibration" entries."""
        meta = self.calib.meta
        return {"compile": self.config.to_json(), "passes": [r.to_json() for r in self.records],
                "calibration": {"model_hash": meta["model_hash"], "data_hash": meta["data_hash"],
                                "samples": meta["samples"], "select_layer": meta["select_layer"]}}


def map_data(policy, cfg, calib_dir) -> str:
    """--condition-map-data resolved: "benchmark" or a folder. auto: the benchmark for a model trained on
    it (its dataset statistics are the benchmark's demonstrations'), else the calibration data."""
    from .sim.demos import STATISTICS_KEY

    if cfg.data != "auto":
        return cfg.data
    return "benchmark" if STATISTICS_KEY in getattr(policy, "statistics", {}) else str(calib_dir)


_FITS: dict = {}  # (policy, data, episodes) -> ConditionFit: a sweep fits one map per configuration


def condition_fit(policy, cfg, calib_dir, cache_dir=calibration.DEFAULT_DIR, progress=True, digest=None):
    """The condition map's fit set with the reference model's vectors (computed once per policy and data,
    and stored in cache_dir for later processes). `digest`: the weights' hash where the caller has it
    (the calibration's), so a large model is not hashed twice."""
    from functools import partial

    from .calibration.hashing import model_hash
    from .models import export_declaration
    from .passes.condition_map import ConditionFit

    data = map_data(policy, cfg, calib_dir)
    key = (id(policy.model), data, cfg.episodes)
    if key not in _FITS:
        if data == "benchmark":
            from .sim.calib_set import EPISODES, benchmark_frames

            samples = benchmark_frames(cfg.episodes, progress=progress)
            source = (f"{len(samples)} frames of {cfg.episodes} benchmark episodes (calibration seeds, episodes "
                      f"{EPISODES}-{EPISODES + cfg.episodes - 1})")
        else:
            samples = load_calib(data)
            source = f"{len(samples)} samples of {data}"
        fit_set, heldout = split_heldout(samples, where=f"--condition-map-data {data}")
        fit = ConditionFit(fit_set, heldout, partial(export_declaration(policy).condition_inputs, policy), source)
        fit.reference = _reference_vectors(policy, fit, cache_dir, progress, digest or model_hash(policy.model))
        _FITS.clear()  # one fit set at a time: it holds its frames
        _FITS[key] = fit
    return _FITS[key]


def _reference_vectors(policy, fit, cache_dir, progress, digest: str) -> dict:
    """The uncompressed model's vectors on both splits: a stored entry for these weights and frames
    (calibration.condition_store), else computed and stored."""
    from .calibration import condition_store as store
    from .passes.condition_map import vectors

    target = target_of(policy.model)
    key = store.key(digest, fit.fit, fit.heldout)
    shapes = {"fit": (len(fit.fit), target.condition_width), "heldout": (len(fit.heldout), target.condition_width)}
    path = store.cache_path(cache_dir, key)
    found, _ = store.load(key, [path, store.SHIPPED], shapes)
    if found is not None:
        return found
    out = {"fit": vectors(target, fit.fit, fit.encode, progress, "condition map: reference"),
           "heldout": vectors(target, fit.heldout, fit.encode, progress, "condition map: reference, held out")}
    store.store(key, out, path)
    return out


def rewrite(policy, config, calib_dir=DEFAULT_CALIB, cache_dir=calibration.DEFAULT_DIR, stored=None,
            select_layer: int | None = None, progress=True, force=False) -> Compiled:
    """Calibrate (or reuse) and apply every enabled pass of `config`; the condition map last."""
    from .passes import compress, condition_map

    if config.tokens is not None:  # a refused weighting fails before minutes of calibration, not after
        resolve_weighting(config.tokens.weighting, target_of(policy.model))
    if config.condition is not None:
        condition_map.check(policy.model, config.condition)
    if select_layer is None:
        select_layer = config.tokens.layer if config.tokens is not None else 2
    calib, reused, heldout = calibrate(policy, calib_dir, cache_dir, stored, select_layer, progress, force)
    calib_set = split_heldout(load_calib(calib_dir), where=calib_dir)[0]
    search_layers(policy, config, calib, calib_set, progress, persist=stored is None)
    model, records = compress(policy.model, config, calib)
    if config.condition is not None:
        fit = condition_fit(policy, config.condition, calib_dir, cache_dir, progress, calib.model_hash)
        model, record = condition_map.apply(model, config.condition, fit, progress)
        records.append(record)
    return Compiled(policy, model, config, records, calib, reused, heldout, calib_set, Path(calib_dir))

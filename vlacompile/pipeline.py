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


def rewrite(policy, config, calib_dir=DEFAULT_CALIB, cache_dir=calibration.DEFAULT_DIR, stored=None,
            select_layer: int | None = None, progress=True, force=False) -> Compiled:
    """Calibrate (or reuse) and apply every enabled pass of `config`."""
    from .passes import compress

    if config.tokens is not None:  # a refused weighting fails before minutes of calibration, not after
        resolve_weighting(config.tokens.weighting, target_of(policy.model))
    if select_layer is None:
        select_layer = config.tokens.layer if config.tokens is not None else 2
    calib, reused, heldout = calibrate(policy, calib_dir, cache_dir, stored, select_layer, progress, force)
    calib_set = split_heldout(load_calib(calib_dir), where=calib_dir)[0]
    search_layers(policy, config, calib, calib_set, progress, persist=stored is None)
    model, records = compress(policy.model, config, calib)
    return Compiled(policy, model, config, records, calib, reused, heldout, calib_set, Path(calib_dir))

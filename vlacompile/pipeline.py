"""The steps the commands chain: calibration data -> calibration (stored, reused) -> rewrite."""

from __future__ import annotations

from pathlib import Path

from . import calibration
from .data.calib import load_calib, split_heldout
from .passes.token_select import check_select_layer

DEFAULT_CALIB = Path("calib_data")



def calibrate(policy, calib_dir=DEFAULT_CALIB, cache_dir=calibration.DEFAULT_DIR, stored=None, select_layer=2,
              progress=True, force=False):
    """-> (Calibration, reused, held-out samples). `stored` is an explicit calibration folder."""
    check_select_layer(select_layer, policy.cfg.llm.layers)
    calib_set, heldout = split_heldout(load_calib(calib_dir))
    if stored is not None:
        return calibration.load(stored, policy), True, heldout
    calib, reused = calibration.load_or_run(policy, calib_set, cache_dir, select_layer, progress, force)
    return calib, reused, heldout

"""python -m vlacompile.eager_speed: it times the calls a robot would make, for both families."""

import numpy as np
from click.testing import CliRunner

from vlacompile.data.calib import load_calib
from vlacompile.eager_speed import main, predictor

from .conftest import CALIB


def test_the_timed_call_is_the_policys_prediction_for_both_families(tiny):
    from vlacompile.models import resolve

    sample = load_calib(CALIB)[-1]
    pi0 = resolve("pi0-tiny")
    np.testing.assert_array_equal(predictor(pi0, sample)(),
                                  pi0.predict([sample.load_image()], sample.instruction, sample.state, seed=0))
    np.testing.assert_array_equal(predictor(tiny, sample)(), tiny.predict(sample.load_image(), sample.instruction, seed=0))


def test_it_reports_both_times_and_their_ratio(pi0_small_calib):
    data, cache = pi0_small_calib
    result = CliRunner().invoke(main, ["--model", "pi0-tiny", "--runs", "5", "--calib-data", str(data),
                                       "--calib-cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert "reference (PyTorch eager)" in result.output and "speedup" in result.output
    assert "L12[actions, kv pairing] T128 M0.25[expert 0] C5" in result.output  # pi0's defaults

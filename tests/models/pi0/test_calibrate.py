"""`calibration.run` on pi0: the family's sample forward (image in the first camera slot, the
manifest's state), stored results of pi0's shape, and a set without states refused in one line."""

import json
import shutil

import pytest
import torch

from vlacompile import pipeline
from vlacompile.errors import UserError

from ...conftest import CALIB, small_calib_folder as _calib_folder


def test_pi0_calibrates_on_the_manifests_states(pi0_tiny, tmp_path):
    data = _calib_folder(tmp_path / "data")
    calib, reused, heldout = pipeline.calibrate(pi0_tiny, data, tmp_path / "cache", progress=False)
    meta = calib.meta
    assert not reused and meta["model"] == "pi0-tiny" and len(meta["layer_importance"]) == 18
    assert meta["layer_importance"][-1] == 1.0  # the last VLM layer's output feeds nothing (targets.py)
    assert calib.mlp_scores.shape == (18, pi0_tiny.cfg.vlm.mlp)
    assert calib.head_mlp_scores.shape == (18, pi0_tiny.cfg.expert.mlp) and bool((calib.head_mlp_scores > 0).all())
    assert calib.token_relevance.shape == (meta["samples"], pi0_tiny.cfg.image_tokens)
    assert len(meta["dit_similarity"]["attn"]) == 18  # the expert's layers, over the flow steps
    assert meta["dit_similarity"]["unit"] == "expert layer"  # what reports call them
    again, reused, _ = pipeline.calibrate(pi0_tiny, data, tmp_path / "cache", progress=False)
    assert reused and again.meta["layer_importance"] == meta["layer_importance"]
    assert torch.equal(again.head_mlp_scores, calib.head_mlp_scores)


def test_a_calibration_set_without_states_is_refused_for_pi0(pi0_tiny, tmp_path):
    data = _calib_folder(tmp_path / "data", drop_state=True)
    with pytest.raises(UserError, match=r"has no 'state'; pi0 reads the robot state") as err:
        pipeline.calibrate(pi0_tiny, data, tmp_path / "cache", progress=False)
    assert "\n" not in str(err.value)


def test_a_state_that_is_not_numbers_is_refused_when_the_set_loads(tmp_path):
    from vlacompile.data.calib import load_calib

    data = _calib_folder(tmp_path / "data", lines=2)
    text = (data / "manifest.jsonl").read_text().replace('"state": [', '"state": ["x", ', 1)
    (data / "manifest.jsonl").write_text(text)
    with pytest.raises(UserError, match=r"manifest.jsonl:1: 'state' must be a list of numbers"):
        load_calib(data)


def test_a_set_without_states_hashes_as_before_states_existed():
    """CogACT's stored calibrations stay valid for a set that has no states (hashing.data_hash)."""
    import hashlib
    from dataclasses import replace

    from vlacompile.calibration.hashing import data_hash
    from vlacompile.data.calib import load_calib

    samples = [replace(s, state=None) for s in load_calib(CALIB)[:3]]
    h = hashlib.sha256()
    for s in samples:
        h.update(s.instruction.encode() + b"\0" + s.image_path.read_bytes())
    assert data_hash(samples) == h.hexdigest() != data_hash(load_calib(CALIB)[:3])

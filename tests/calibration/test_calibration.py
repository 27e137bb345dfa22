"""Calibration: the statistics against independent computations, storage and reuse, and that the
calibrated layer ranking is better than chance."""

import random

import pytest
import torch
import torch.nn.functional as F

from vlacompile import calibration, pipeline
from vlacompile.errors import UserError
from vlacompile.models.cogact.llm import additive_causal_mask
from vlacompile.passes import layer_drop

from ..conftest import CALIB


def test_layer_importance_is_one_minus_mean_cosine(tiny, sample_image):
    from vlacompile.data.calib import load_calib

    sample = load_calib(CALIB)[0]
    calib = calibration.run(tiny, [sample], progress=False)
    model = tiny.model
    pixels, ids = tiny.encode(sample_image, sample.instruction)
    h, valid, positions = model.llm_inputs(model.visual_tokens(pixels), ids)
    llm = model.llm_backbone
    mask, rope = additive_causal_mask(valid, h.dtype), llm.rotary(h, positions)
    expected = []
    for i in range(len(llm.layers)):
        out = llm.run_layer(i, h, mask, positions, rope)
        expected.append(1 - F.cosine_similarity(h, out, dim=-1).mean().item())
        h = out
    assert calib.layer_importance == pytest.approx(expected, abs=1e-5)
    sim = calib.meta["dit_similarity"]
    assert len(sim["attn"]) == len(model.action_model.net.blocks) and len(sim["attn"][0]) == 9
    assert sim["unit"] == "DiT block"


def test_results_are_stored_and_reused(tiny, tmp_path):
    from vlacompile.data.calib import load_calib

    samples = load_calib(CALIB)[:2]
    first, reused_first = calibration.load_or_run(tiny, samples, tmp_path, progress=False)
    second, reused_second = calibration.load_or_run(tiny, samples, tmp_path, progress=False)
    assert (reused_first, reused_second) == (False, True)
    assert second.layer_importance == first.layer_importance
    assert torch.equal(second.mlp_scores, first.mlp_scores)
    assert {p.name for p in first.path.iterdir()} == {"calibration.json", "tensors.safetensors"}
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temporary leftovers


def test_results_stored_before_the_unit_was_recorded_get_it_from_the_family(tiny, calibrated, tmp_path):
    import copy

    old = copy.deepcopy(calibrated[0])
    del old.meta["dit_similarity"]["unit"]
    calibration.save(old, tmp_path / "old")
    assert "unit" not in calibration.load(tmp_path / "old").meta["dit_similarity"]  # as stored
    assert calibration.load(tmp_path / "old", tiny).meta["dit_similarity"]["unit"] == "DiT block"


def test_calibration_of_another_model_is_refused(tiny, calibrated):
    other = type(tiny)(tiny.model, tiny.tokenizer, tiny.statistics, "other")
    other.model = __import__("copy").deepcopy(tiny.model)
    with torch.no_grad():
        other.model.projector.projector[0].bias.add_(1.0)
    with pytest.raises(UserError, match="calibration of other weights"):
        pipeline.calibrate(other, CALIB, stored=calibrated[0].path)


def test_calibration_sampled_otherwise_is_refused_and_keyed_apart(tiny, calibrated):
    """The same weights under another sampler (here CogACT's guidance scale) compute other actions: a
    stored calibration names both settings and is refused, and the cache key differs."""
    import copy
    from dataclasses import replace

    other = type(tiny)(tiny.model, tiny.tokenizer, tiny.statistics, "other")
    other.model = copy.deepcopy(tiny.model)
    other.model.cfg = replace(tiny.model.cfg, sampler=replace(tiny.model.cfg.sampler, cfg_scale=3.0))
    with pytest.raises(UserError) as err:
        pipeline.calibrate(other, CALIB, stored=calibrated[0].path)
    message = str(err.value)
    assert "cfg_scale 1.5" in message and "cfg_scale 3.0" in message and "\n" not in message
    samples = calibrated[1]
    assert calibration.key(tiny, samples, 2) != calibration.key(other, samples, 2)


def _cognition_change(model, dropped_model, inputs):
    return sum(1 - F.cosine_similarity(model.cognition(p, i), dropped_model.cognition(p, i)).item()
               for p, i in inputs) / len(inputs)


def test_calibrated_layer_drop_beats_random_drop(tiny, calibrated):
    calib, heldout = calibrated
    inputs = [tiny.encode(s.load_image(), s.instruction) for s in heldout]
    calibrated_model, _ = layer_drop.apply(tiny.model, layer_drop.LayerDropConfig(22), calib)
    ours = _cognition_change(tiny.model, calibrated_model, inputs)
    rng = random.Random(0)
    chance = []
    for _ in range(4):
        fake = calibration.Calibration({**calib.meta, "layer_importance": [rng.random() for _ in range(32)]},
                                       calib.mlp_scores, calib.token_relevance)
        random_model, _ = layer_drop.apply(tiny.model, layer_drop.LayerDropConfig(22), fake)
        chance.append(_cognition_change(tiny.model, random_model, inputs))
    assert ours < sum(chance) / len(chance)
    assert ours < min(chance)


@pytest.mark.parametrize("damage", [
    lambda f: (f / "calibration.json").write_text(""),  # a write cut short
    lambda f: (f / "calibration.json").write_text((f / "calibration.json").read_text().replace("0.", "1.", 1)),
    lambda f: (f / "tensors.safetensors").write_bytes((f / "tensors.safetensors").read_bytes()[:64]),
])
def test_a_damaged_stored_calibration_is_recomputed_with_one_note(tiny, tmp_path, damage):
    from vlacompile.data.calib import load_calib

    samples = load_calib(CALIB)[:2]
    first, reused = calibration.load_or_run(tiny, samples, tmp_path, progress=False)
    assert not reused
    damage(first.path)
    notes = []
    again, reused = calibration.load_or_run(tiny, samples, tmp_path, progress=False, log=notes.append)
    assert not reused and len(notes) == 1 and str(first.path) in notes[0] and "recomputing" in notes[0]
    assert again.layer_importance == pytest.approx(first.layer_importance)
    assert calibration.load_or_run(tiny, samples, tmp_path, progress=False, log=notes.append)[1]  # sound again
    assert len(notes) == 1

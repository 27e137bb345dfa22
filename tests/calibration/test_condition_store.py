"""The condition map's stored reference vectors: what is stored is the reference model's own vectors, a
later fit reads them instead of running the model, and other weights, other frames or a damaged file
never match. The shipped file holds the embedded model's vectors on the build's frames."""

import torch

from vlacompile import pipeline
from vlacompile.calibration import condition_store as store
from vlacompile.calibration.hashing import model_hash
from vlacompile.passes import ConditionMapConfig
from vlacompile.passes.condition_map import vectors
from vlacompile.passes.family import target_of
from vlacompile.passes.record import fresh_copy

from ..conftest import CALIB

SMALL = ConditionMapConfig("benchmark", episodes=8)  # 32 frames: 7 episodes fit, 1 held out


def _fresh_fit(tiny, cache):
    pipeline._FITS.clear()  # a new process: only the stored entry survives
    return pipeline.condition_fit(tiny, SMALL, CALIB, cache, progress=False)


def _own_vectors(tiny, fit):
    target = target_of(tiny.model)
    return {p: vectors(target, getattr(fit, p), fit.encode) for p in ("fit", "heldout")}


def test_the_stored_vectors_are_the_reference_models_and_a_later_fit_reads_them(tiny, tmp_path):
    first = _fresh_fit(tiny, tmp_path)
    (entry,) = tmp_path.glob("condition-*.safetensors")
    own = _own_vectors(tiny, first)
    key = store.key(model_hash(tiny.model), first.fit, first.heldout)
    stored, where = store.load(key, [entry], {p: tuple(v.shape) for p, v in own.items()})
    assert where == entry
    for p in own:
        torch.testing.assert_close(stored[p], own[p], rtol=0, atol=0)
    # the same key with other numbers: a later fit takes what is stored instead of running the model
    marked = {p: v + 1.0 for p, v in own.items()}
    assert store.store(key, marked, entry)
    again = _fresh_fit(tiny, tmp_path)
    for p in own:
        torch.testing.assert_close(again.reference[p], marked[p], rtol=0, atol=0)


def test_other_weights_other_frames_or_a_damaged_file_are_not_used(tiny, tmp_path):
    fit = _fresh_fit(tiny, tmp_path)
    (entry,) = tmp_path.glob("condition-*.safetensors")
    shapes = {p: tuple(v.shape) for p, v in fit.reference.items()}
    key = store.key(model_hash(tiny.model), fit.fit, fit.heldout)
    other = fresh_copy(tiny.model)
    with torch.no_grad():
        other.llm_backbone.llm.model.norm.weight.mul_(1.01)
    assert store.key(model_hash(other), fit.fit, fit.heldout) != key
    assert store.key(model_hash(tiny.model), fit.fit[1:], fit.heldout) != key
    assert store.load(key, [entry], {**shapes, "fit": (1, 64)}) == (None, None)  # other shapes
    data = bytearray(entry.read_bytes())
    data[-8:] = bytes(8)  # the last vector's bytes changed: the sha256 no longer matches
    entry.write_bytes(bytes(data))
    assert store.load(key, [entry], shapes) == (None, None)
    entry.write_bytes(b"not a safetensors file")
    again = _fresh_fit(tiny, tmp_path)  # recomputed and written again
    torch.testing.assert_close(again.reference["fit"], fit.reference["fit"], rtol=0, atol=0)
    assert store.load(key, [entry], shapes)[1] == entry


def test_an_unwritable_cache_costs_time_not_the_fit(tiny, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would be")
    fit = _fresh_fit(tiny, blocker)
    assert fit.reference["fit"].shape == (len(fit.fit), 64) and blocker.read_text().startswith("a file")


def test_the_shipped_vectors_are_the_embedded_models_on_the_builds_frames(tiny):
    """The first 16 frames of the default fit set (4 episodes after calib_data's) through the reference,
    against the shipped file's first 16 rows; its key is checked at every use."""
    from functools import partial

    from safetensors import safe_open

    from vlacompile.models import export_declaration
    from vlacompile.sim.calib_set import benchmark_frames

    with safe_open(str(store.SHIPPED), framework="pt") as f:
        shipped = f.get_tensor("fit")
        assert f.get_tensor("heldout").shape == (160, 64)
    assert shipped.shape == (640, 64)
    frames = benchmark_frames(4)
    encode = partial(export_declaration(tiny).condition_inputs, tiny)
    own = vectors(target_of(tiny.model), frames, encode)
    torch.testing.assert_close(shipped[:16], own, rtol=1e-5, atol=1e-6)
    assert ConditionMapConfig().episodes == 200  # the default whose frames were stored


def test_the_key_covers_every_frame_its_order_and_the_split(tiny):
    from vlacompile.sim.calib_set import benchmark_frames

    frames = benchmark_frames(8)
    digest = model_hash(tiny.model)
    key = store.key(digest, frames[:24], frames[24:])
    assert key != store.key(digest, frames[1:24] + frames[:1], frames[24:])  # order
    assert key != store.key(digest, frames[:23], frames[23:])  # the split
    assert key != store.key(digest, frames[:24], frames[24:31])  # a frame fewer
    assert key != store.key("other weights", frames[:24], frames[24:])

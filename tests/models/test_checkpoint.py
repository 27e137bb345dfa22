"""Checkpoints in the released layout: round trips, preset inference, and one clear error per mismatch."""

import json
import shutil

import pytest
import torch

from vlacompile.errors import UserError
from vlacompile.models import resolve
from vlacompile.models.cogact.checkpoint import find_weights, save_folder


def _actions(policy, image):
    return policy.predict_normalized(image, "put the apple into the bowl", policy.noise(1))


def test_pt_layout_is_the_released_one(tiny_folder):
    assert {p.name for p in tiny_folder.iterdir()} >= {"config.json", "dataset_statistics.json", "checkpoints"}
    blob = torch.load(find_weights(tiny_folder), weights_only=True)
    assert set(blob) == {"model"}
    assert set(blob["model"]) == {"vision_backbone", "projector", "llm_backbone", "action_model"}
    assert "net.x_embedder.linear.weight" in blob["model"]["action_model"]
    assert "llm.model.layers.31.mlp.gate_proj.weight" in blob["model"]["llm_backbone"]
    assert "dino_featurizer.blocks.0.ls1.gamma" in blob["model"]["vision_backbone"]
    assert "projector.0.weight" in blob["model"]["projector"]


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_round_trip_gives_the_in_memory_model_outputs(tiny, sample_image, tmp_path, fmt):
    folder = save_folder(tiny, tmp_path / f"ckpt-{fmt}", fmt=fmt)
    loaded = resolve(str(folder))
    assert loaded.cfg.name == "cogact-tiny"  # inferred from the weights, no --preset
    ours, theirs = loaded.model.state_dict(), tiny.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # Bit-identical weights; kernels may still round differently on memory-mapped storage.
    torch.testing.assert_close(_actions(loaded, sample_image), _actions(tiny, sample_image), atol=1e-4, rtol=1e-4)


def _tampered(tiny_folder, tmp_path, edit):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_folder, folder)
    path = find_weights(folder)
    blob = torch.load(path, weights_only=True)
    edit(blob["model"])
    torch.save(blob, path)
    return folder


@pytest.mark.parametrize("edit,expected", [
    (lambda m: m["action_model"].pop("net.final_layer.linear.weight"), "missing keys: action_model.net.final_layer"),
    (lambda m: m["projector"].update({"projector.6.weight": torch.zeros(2)}), "unexpected keys: projector.projector.6"),
    (lambda m: m["llm_backbone"].update({"llm.model.norm.weight": torch.ones(3)}), "wrong shapes: llm_backbone.llm.model.norm.weight (3,)"),
])
def test_mismatched_checkpoint_is_one_clear_error(tiny_folder, tmp_path, edit, expected):
    folder = _tampered(tiny_folder, tmp_path, edit)
    with pytest.raises(UserError, match="cogact-tiny") as err:
        resolve(str(folder), preset="cogact-tiny")
    assert expected in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="matches no preset"):
        resolve(str(folder))


def test_corrupt_and_incomplete_folders_name_the_file(tiny_folder, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_folder, folder)
    weights = find_weights(folder)
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UserError, match=str(weights)):
        resolve(str(folder))
    (folder / "config.json").unlink()
    with pytest.raises(UserError, match="no config.json"):
        resolve(str(folder))


def test_pickled_code_is_never_executed(tiny_folder, tmp_path):
    folder = tmp_path / "evil"
    shutil.copytree(tiny_folder, folder)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    torch.save({"model": Boom()}, find_weights(folder), _use_new_zipfile_serialization=True)
    with pytest.raises(UserError, match="not a readable weights-only checkpoint"):
        resolve(str(folder))


def test_save_refuses_to_overwrite_and_leaves_nothing_half_written(tiny, tiny_folder):
    before = sorted(p.name for p in tiny_folder.parent.iterdir())
    with pytest.raises(UserError, match="exists"):
        save_folder(tiny, tiny_folder)
    assert sorted(p.name for p in tiny_folder.parent.iterdir()) == before


def test_statistics_file_is_validated(tiny_folder, tmp_path):
    folder = tmp_path / "stats"
    shutil.copytree(tiny_folder, folder)
    (folder / "dataset_statistics.json").write_text(json.dumps({"bridge": {"action": {"q01": [0]}}}))
    with pytest.raises(UserError, match="dataset_statistics.json"):
        resolve(str(folder))

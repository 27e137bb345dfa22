"""Checkpoints in LeRobot's pretrained layout: round trips, strictness, and one clear line per refusal."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from vlacompile.errors import UserError
from vlacompile.models.pi0.checkpoint import load_folder, save_folder

WEIGHTS = "model.safetensors"
LR = "model.paligemma_with_expert."


def _copy(folder, tmp_path, name="copy"):
    out = tmp_path / name
    shutil.copytree(folder, out)
    return out


def _edit_weights(folder, edit):
    state = load_file(str(folder / WEIGHTS))
    edit(state)
    save_file(state, str(folder / WEIGHTS))


def test_layout_is_lerobots(pi0_folder):
    assert {p.name for p in pi0_folder.iterdir()} == {
        WEIGHTS, "config.json", "tokenizer.json", "policy_preprocessor.json", "policy_postprocessor.json",
        "policy_preprocessor_step_6_normalizer_processor.safetensors",
        "policy_postprocessor_step_0_unnormalizer_processor.safetensors"}
    state = load_file(str(pi0_folder / WEIGHTS))
    assert all(k.startswith("model.") for k in state)
    # As lerobot/pi0_base stores them: the tied embedding under lm_head, the expert's unused lm_head.
    assert state[LR + "paligemma.lm_head.weight"].shape == (512, 64)
    assert state[LR + "gemma_expert.lm_head.weight"].shape == (512, 32)
    assert LR + "paligemma.model.language_model.embed_tokens.weight" not in state
    vision = LR + "paligemma.model.vision_tower.vision_model."
    assert state[vision + "encoder.layers.2.self_attn.out_proj.weight"].shape == (48, 48)
    assert state[LR + "paligemma.model.multi_modal_projector.linear.weight"].shape == (64, 48)
    assert state[LR + "gemma_expert.model.layers.17.self_attn.k_proj.weight"].shape == (16, 32)
    assert state["model.action_time_mlp_in.weight"].shape == (32, 64)
    config = json.loads((pi0_folder / "config.json").read_text())
    assert config["type"] == "pi0" and config["chunk_size"] == 50 and config["tokenizer_max_length"] == 48
    assert config["input_features"]["observation.state"] == {"type": "STATE", "shape": [5]}
    stats = load_file(str(pi0_folder / "policy_preprocessor_step_6_normalizer_processor.safetensors"))
    assert {"observation.state.mean", "observation.state.std", "action.mean", "action.std"} <= set(stats)


def test_round_trip_gives_the_same_model_and_actions(pi0_tiny, pi0_folder, sample_image):
    loaded = load_folder(pi0_folder)
    assert loaded.cfg.name == "pi0-tiny" and loaded.cameras == pi0_tiny.cameras  # inferred from the weights
    ours, theirs = loaded.model.state_dict(), pi0_tiny.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    args = ([sample_image], "stack the blue block on the green block", [0.1] * 5)
    assert (loaded.predict(*args, seed=5) == pi0_tiny.predict(*args, seed=5)).all()


def test_a_file_with_embed_tokens_and_no_prefix_loads_too(pi0_tiny, pi0_folder, tmp_path):
    """LeRobot adds the `model.` prefix when a file lacks it, and a fresh save may keep embed_tokens."""
    folder = _copy(pi0_folder, tmp_path)

    def unprefixed_with_embedding(state):
        head = state.pop(LR + "paligemma.lm_head.weight")
        state[LR + "paligemma.model.language_model.embed_tokens.weight"] = head
        for k in list(state):
            state[k.removeprefix("model.")] = state.pop(k)

    _edit_weights(folder, unprefixed_with_embedding)
    loaded = load_folder(folder)
    assert torch.equal(loaded.model.vlm.embed_tokens.weight, pi0_tiny.model.vlm.embed_tokens.weight)


@pytest.mark.parametrize("edit,expected", [
    (lambda s: s.pop(LR + "gemma_expert.model.layers.3.mlp.up_proj.weight"),
     "missing keys: " + LR + "gemma_expert.model.layers.3.mlp.up_proj.weight"),
    (lambda s: s.update({"model.time_mlp_in.weight": torch.zeros(32, 32)}),
     "unexpected keys: model.time_mlp_in.weight"),
    (lambda s: s.update({"model.state_proj.weight": torch.zeros(32, 24)}),
     "wrong shapes: model.state_proj.weight (32, 24) != (32, 32)"),
])
def test_a_mismatched_file_is_refused_by_key(pi0_folder, tmp_path, edit, expected):
    folder = _copy(pi0_folder, tmp_path)
    _edit_weights(folder, edit)
    for preset in ("pi0-tiny", None):  # named preset, or inference over every preset
        with pytest.raises(UserError) as err:
            load_folder(folder, preset)
        assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_cogact_folder_is_refused(tiny_folder):
    with pytest.raises(UserError, match="CogACT checkpoint folder") as err:
        load_folder(tiny_folder)
    assert "\n" not in str(err.value)


def test_another_lerobot_policy_type_is_refused(pi0_folder, tmp_path):
    folder = _copy(pi0_folder, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "type": "pi05"}))
    with pytest.raises(UserError, match="policy type is 'pi05', not 'pi0'"):
        load_folder(folder)


def _with_noise_scale(folder, value):
    config = json.loads((folder / "config.json").read_text())
    if value is None:
        config.pop("vlacompile_noise_scale")
    else:
        config["vlacompile_noise_scale"] = value
    (folder / "config.json").write_text(json.dumps(config))


def test_the_sampling_temperature_is_the_folders_or_the_presets(pi0_tiny, pi0_folder, tmp_path):
    """vlacompile's config key travels with the folder; a LeRobot folder has none and gets the preset's
    (pi0-tiny's 0; pi0-base's 1, pi0's own)."""
    from vlacompile.models import resolve_config

    assert json.loads((pi0_folder / "config.json").read_text())["vlacompile_noise_scale"] == 0.0
    folder = _copy(pi0_folder, tmp_path)
    _with_noise_scale(folder, 0.25)
    assert load_folder(folder).cfg.flow.noise_scale == 0.25
    assert resolve_config(str(folder)).flow.noise_scale == 0.25  # what `info` prints, from the header alone
    _with_noise_scale(folder, None)
    assert load_folder(folder).cfg.flow.noise_scale == pi0_tiny.cfg.flow.noise_scale == 0.0


@pytest.mark.parametrize("value", [-0.5, "0.5", True, 11])
def test_a_bad_sampling_temperature_is_refused(pi0_folder, tmp_path, value):
    folder = _copy(pi0_folder, tmp_path)
    _with_noise_scale(folder, value)
    with pytest.raises(UserError) as err:
        load_folder(folder)
    message = str(err.value)
    assert str(folder / "config.json") in message and "vlacompile_noise_scale" in message and "\n" not in message


@pytest.mark.parametrize("drop", ["action.mean", "observation.state.std"])
def test_statistics_without_action_or_state_are_refused(pi0_folder, tmp_path, drop):
    folder = _copy(pi0_folder, tmp_path)
    path = folder / "policy_preprocessor_step_6_normalizer_processor.safetensors"
    stats = load_file(str(path))
    del stats[drop]
    save_file(stats, str(path))
    with pytest.raises(UserError) as err:
        load_folder(folder)
    message = str(err.value)
    assert str(path) in message and f"lack {drop}" in message and "\n" not in message


def test_quantile_normalization_is_refused(pi0_folder, tmp_path):
    folder = _copy(pi0_folder, tmp_path)
    pre = json.loads((folder / "policy_preprocessor.json").read_text())
    pre["steps"][6]["config"]["norm_map"]["ACTION"] = "QUANTILES"
    (folder / "policy_preprocessor.json").write_text(json.dumps(pre))
    with pytest.raises(UserError, match="ACTION uses QUANTILES normalization"):
        load_folder(folder)


def test_missing_and_corrupt_files_name_the_file(pi0_folder, tmp_path):
    folder = _copy(pi0_folder, tmp_path)
    weights = folder / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UserError, match=str(weights)):
        load_folder(folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="no tokenizer.json"):
        load_folder(folder)


def test_a_flattened_siglip_name_is_read_as_lerobots(pi0_tiny, pi0_folder, tmp_path):
    folder = _copy(pi0_folder, tmp_path)

    def flatten(state):
        for key in [k for k in state if ".vision_model." in k]:
            state[key.replace(".vision_model.", ".")] = state.pop(key)

    _edit_weights(folder, flatten)
    loaded = load_folder(folder)
    assert torch.equal(loaded.model.vision_tower.vision_model.post_layernorm.weight,
                       pi0_tiny.model.vision_tower.vision_model.post_layernorm.weight)


def test_save_refuses_to_overwrite(pi0_tiny, pi0_folder):
    with pytest.raises(UserError, match="exists"):
        save_folder(pi0_tiny, pi0_folder)


def test_the_configuration_of_a_folder_comes_from_the_header_alone(pi0_tiny, pi0_folder, tmp_path):
    """`info` needs shapes only: resolve_config reads the safetensors header (meta tensors), so it
    names the preset of a folder whose weights it never loads, and still refuses a file it cannot read."""
    from vlacompile.models import resolve_config
    from vlacompile.models.pi0.checkpoint import read_weights

    shapes, prefix = read_weights(pi0_folder / WEIGHTS, shapes_only=True)
    loaded, _ = read_weights(pi0_folder / WEIGHTS)
    assert prefix == "model." and {k: v.shape for k, v in shapes.items()} == {k: v.shape for k, v in loaded.items()}
    assert all(v.is_meta for v in shapes.values())
    assert resolve_config(str(pi0_folder)) == pi0_tiny.cfg
    folder = _copy(pi0_folder, tmp_path)
    (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:1000])
    with pytest.raises(UserError, match=str(folder / WEIGHTS)):
        resolve_config(str(folder))

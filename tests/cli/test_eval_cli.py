"""`vlacompile eval` and `vlacompile train` from the command line: results, and bad input."""

import json
import shutil

import pytest
from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.sim.outcomes import OUTCOMES

from ..conftest import CALIB


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_eval_compares_the_reference_and_the_graphs_on_the_same_episodes(graphs, tmp_path):
    out = tmp_path / "eval"
    result = run("eval", "--graphs", graphs, "--precision", "fp32", "--episodes", 2, "--filmstrips", 1, "--out", out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "eval.json").read_text())
    assert list(data["policies"]) == ["reference (PyTorch)", "compiled fp32 (onnxruntime)"]
    episodes = [[(e["family"], e["seed"]) for e in p["episodes"]] for p in data["policies"].values()]
    assert episodes[0] == episodes[1] == [("pick", 200000), ("put", 200001)]
    assert (out / "filmstrip.png").stat().st_size > 10_000 and (out / "eval.md").is_file()
    assert "95% CI" in result.output and "how the episodes ended:" in result.output
    for p in data["policies"].values():  # each episode ended one way, and the summary counts them
        ends = [e["outcome"] for e in p["episodes"]]
        assert set(ends) <= set(OUTCOMES) and p["summary"]["overall"]["outcomes"] == {o: ends.count(o) for o in set(ends)}


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory):
    """A checkpoint of the same preset with other (synthetic) weights."""
    from vlacompile.models.cogact.checkpoint import save_folder
    from vlacompile.models.cogact.embedded import synthetic_policy

    return save_folder(synthetic_policy("cogact-tiny"), tmp_path_factory.mktemp("other") / "synthetic")


@pytest.fixture()
def six_dim_statistics(other_weights, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(other_weights, folder)
    stats = json.loads((folder / "dataset_statistics.json").read_text())
    for entry in stats.values():
        for field in ("q01", "q99", "mask"):
            entry["action"][field] = entry["action"][field][:6]
    (folder / "dataset_statistics.json").write_text(json.dumps(stats))
    return folder


@pytest.mark.parametrize("args, message", [
    (["eval", "--episodes", "0"], "--episodes 0 from --start 0 is an empty or out-of-range seed range"),
    (["eval", "--start", "99999", "--episodes", "2"], "is an empty or out-of-range seed range"),
    (["eval", "--families", "pick,juggle"], "unknown task family juggle"),
    (["eval", "--no-reference"], "nothing to evaluate"),
    (["eval", "--ensemble", "2"], "--ensemble 2 averages one action per prediction; pass --execute 1 with it"),
    (["train", "--preset", "cogact-base"], "training here is for small presets"),
    (["train", "--preset", "pi0-tiny", "--vision-steps", "5"], "recipe has no per-patch loss for a vision stage to train; give --patches"),
    (["train", "--device", "cuda"], "this PyTorch sees no CUDA GPU"),
    (["train", "--preset", "pi0-tiny", "--layer-drop", "0.2"], "recipe has no LayerDrop"),
    (["train", "--layer-drop", "1"], "--layer-drop"),
    (["train", "--device", "tpu"], "train on cpu or cuda"),
    (["train", "--readout-layers", "0,8"], "--readout-layers '0,8': give comma-separated LLM layer indices from 1 to 31"),
    (["train", "--readout-layers", "two"], "give comma-separated LLM layer indices from 1 to 31"),
    (["train", "--preset", "pi0-tiny", "--readout-layers", "2"], "recipe has no grounding readout"),
    (["train", "--init", "calib_data"], "no weights.safetensors; give a folder `vlacompile train` wrote"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = run(*args, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_graphs_of_other_weights_are_refused(graphs, other_weights, tmp_path):
    result = run("eval", "--model", other_weights, "--graphs", graphs, "--episodes", 1, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "was compiled from other weights" in result.output and "--no-reference" in result.output
    assert not (tmp_path / "out").exists()


def test_statistics_that_do_not_match_the_action_dimensions_are_refused(six_dim_statistics):
    result = run("predict", "--model", six_dim_statistics, "--image", CALIB / "images" / "ep00_step00.png",
                 "--instruction", "pick up the red block")
    assert result.exit_code == 2, result.output
    assert "has 6 action q01 values for a policy of 7 action dimensions" in result.output

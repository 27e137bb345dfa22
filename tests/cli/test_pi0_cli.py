"""pi0 from the command line: info, predict, build, package, run and eval with --model pi0-tiny / pi0-base."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vlacompile.cli import main

from ..conftest import CALIB
from ..models.pi0.test_params import CONFIRMED

IMAGE = CALIB / "images" / "ep00_step00.png"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info_on_pi0_base_gives_the_confirmed_parameters_per_module():
    result = run("info", "--model", "pi0-base", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    params = {m: v["params"] for m, v in data["modules"].items()}
    assert params == {"vision": CONFIRMED["vision"] + CONFIRMED["projector"], "llm": CONFIRMED["llm"],
                      "action_head": CONFIRMED["expert"] + CONFIRMED["suffix"]}
    assert data["total"]["params"] == CONFIRMED["total"]
    assert data["modules"]["action_head"]["steps"] == 10 and data["modules"]["llm"]["tokens_in"] == 3 * 256 + 48


def test_info_keeping_everything_changes_no_count():
    result = run("info", "--model", "pi0-tiny", "--json", "--layers", 18, "--tokens", 512, "--mlp-sparsity", 0,
                 "--cache-interval", 1)
    data = json.loads(result.output)
    assert data["compressed"] == {"modules": data["modules"], "total": data["total"]}


def test_info_defaults_compress_every_module_of_pi0_but_vision():
    data = json.loads(run("info", "--model", "pi0-tiny", "--json").output)
    assert data["config"]["layers"]["keep"] == 12 and data["config"]["tokens"]["tokens"] == 128
    flops = {m: (data["modules"][m]["flops"], data["compressed"]["modules"][m]["flops"]) for m in data["modules"]}
    assert flops["vision"][0] == flops["vision"][1]
    assert flops["llm"][1] < 0.5 * flops["llm"][0] and flops["action_head"][1] < flops["action_head"][0]


def test_info_shows_the_prefix_the_token_selection_leaves():
    """pi0-tiny's prefix: 2 cameras x 256 tokens + 48 prompt ids; after the selection, 128 + 48."""
    result = run("info", "--model", "pi0-tiny")
    assert result.exit_code == 0, result.output
    assert "560 -> 560 (compressed: 560 -> 176)" in result.output


def test_predict_on_pi0_is_the_python_apis_chunk():
    from vlacompile.models import resolve
    from vlacompile.runtime.image import open_image

    state = [0.2, 0.38, 0.35, 0.0, 1.0]
    result = run("predict", "--model", "pi0-tiny", "--image", IMAGE, "--instruction", "pick up the blue block",
                 "--state", ",".join(map(str, state)), "--seed", 3, "--json")
    assert result.exit_code == 0, result.output
    got = np.array(json.loads(result.output)["actions"])
    expected = resolve("pi0-tiny").predict([open_image(IMAGE)], "pick up the blue block", np.array(state), seed=3)
    assert got.shape == (50, 7) and np.allclose(got, expected, atol=1e-5)


def test_eval_runs_pi0_in_closed_loop(tmp_path):
    out = tmp_path / "eval"
    result = run("eval", "--model", "pi0-tiny", "--episodes", 1, "--filmstrips", 0, "--out", out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "eval.json").read_text())
    [(name, policy)] = data["policies"].items()
    assert name == "reference (PyTorch)" and policy["episodes"][0]["calls"] >= 1


@pytest.fixture(scope="module")
def pi0_build(tmp_path_factory, pi0_small_calib):
    """`vlacompile build --model pi0-tiny` with the family's default flags (fp32, a short check), on a
    small calibration set: the default layer search runs the model 75 times over its samples."""
    out = tmp_path_factory.mktemp("pi0-build") / "graphs"
    data, cache = pi0_small_calib
    result = run("build", "--model", "pi0-tiny", "--out", out, "--precision", "fp32", "--samples", 2,
                 "--latency-runs", 1, "--eval-episodes", 1, "--calib-data", data, "--calib-cache", cache)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_build_on_pi0_exports_validated_graphs_of_the_default_compression(pi0_build):
    out, output = pi0_build
    summary = json.loads((out / "build.json").read_text())
    assert summary["parity"]["passed"] and summary["compile"]["layers"] == {
        "keep": 12, "method": "actions", "seed": 0, "pairing": "kv"}
    layer_drop = summary["passes"][0]["changes"]  # the search's first six drops, the free layer first
    assert layer_drop["search_order"][0] == 17 and sorted(layer_drop["search_order"]) == layer_drop["dropped_layers"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["family"] == "pi0" and manifest["pipeline"] == ["vision", "prefix", "expert"]
    prefix = manifest["graphs"]["fp32"]["prefix"]["outputs"]
    assert len([t for t in prefix if t["name"].startswith("k_")]) == 18  # kv pairing: every expert layer reads one
    assert "state token cosine" in output and (out / "report.html").is_file()


def test_package_and_run_a_pi0_bundle_give_the_runtimes_actions(pi0_build, tmp_path):
    from vlacompile.runtime import GraphPipeline
    from vlacompile.runtime.image import open_image

    out, _ = pi0_build
    bundle = tmp_path / "bundle"
    assert run("package", "--graphs", out, "--out", bundle).exit_code == 0
    state = "0.2,0.38,0.35,0.0,1.0"
    result = run("run", "--bundle", f"{bundle}.tar.gz", "--image", IMAGE, "--instruction", "pick up the blue block",
                 "--state", state, "--seed", 5, "--json")
    assert result.exit_code == 0, result.output
    with GraphPipeline(out) as pipe:
        want = pipe.predict(open_image(IMAGE), "pick up the blue block", seed=5, state=[0.2, 0.38, 0.35, 0.0, 1.0])
    np.testing.assert_allclose(np.array(json.loads(result.output)["actions"]), want, atol=1e-5)


def test_eval_runs_pi0_graphs_through_the_runtime(pi0_build, tmp_path):
    out, _ = pi0_build
    result = run("eval", "--model", "pi0-tiny", "--graphs", out, "--no-reference", "--episodes", 1,
                 "--filmstrips", 0, "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert list(data["policies"]) == ["compiled fp32 (onnxruntime)"]

"""int8 / fp8 from the command line: the bad inputs, the Polygraphy re-check, the bench comparison."""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.runtime import manifest

from ..conftest import CALIB


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_exit_2(result, message):
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_calibration_set_too_small_for_the_method_is_refused_before_any_work(tmp_path):
    small = tmp_path / "calib"
    (small / "images").mkdir(parents=True)
    lines = (CALIB / "manifest.jsonl").read_text().splitlines()[:12]  # 3 episodes: 8 calibrate, 4 held out
    for line in lines:
        image = json.loads(line)["image"]
        shutil.copyfile(CALIB / image, small / image)
    (small / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    out, cache = tmp_path / "graphs", tmp_path / "cache"
    result = run("export", "--precision", "fp32,int8", "--quant-method", "entropy", "--calib-data",
                 small, "--calib-cache", cache, "--out", out)
    _one_line_exit_2(result, f"--calib-data {small}: 8 calibration samples (the 80% not held out), but entropy "
                             "calibration needs at least 16; add samples")
    assert not out.exists() and not cache.exists()


def test_fp8_on_onnx_runtime_is_refused(tmp_path):
    result = run("bench", "--precision", "fp32,fp8", "--out", tmp_path / "bench")
    _one_line_exit_2(result, "ONNX Runtime's CPU provider has no fp8 compute")


def test_a_recipe_naming_a_missing_module_or_group_is_refused(tmp_path, calibrated):
    recipe, out = tmp_path / "recipe.json", tmp_path / "graphs"
    recipe.write_text(json.dumps({"quantize": ["llm_mlp"], "keep_float": ["llm_backbone.llm.model.layers.40.mlp"]}))
    result = run("export", "--no-condition-map", "--precision", "int8", "--quant-recipe", recipe, "--out", out,
                 "--calib-cache", calibrated[0].path.parent)
    _one_line_exit_2(result, "keep_float names 'llm_backbone.llm.model.layers.40.mlp', which is no module of the "
                             "rewritten model")
    recipe.write_text(json.dumps({"quantize": ["llm_ffn"]}))
    result = run("export", "--precision", "int8", "--quant-recipe", recipe, "--out", out)
    _one_line_exit_2(result, "no group named llm_ffn; the groups are vision_attention, vision_mlp")
    assert not out.exists()


def test_validate_and_polygraphy_recheck_the_int8_graphs(int8_graphs, calibrated, tmp_path):
    """The saved Polygraphy inputs and outputs re-run for the int8 graphs, with the int8 gates."""
    folder = tmp_path / "graphs"
    shutil.copytree(int8_graphs, folder)
    result = run("validate", "--graphs", folder, "--calib-cache", calibrated[0].path.parent, "--samples", 2,
                 "--precision", "int8")
    assert result.exit_code == 0, result.output
    assert "lint llm.int8.onnx" in result.output and "parity: passed" in result.output
    polygraphy = Path(sys.executable).parent / "polygraphy"
    commands = manifest.read(folder)["parity"]["commands"]
    assert set(commands) == {"vision.int8", "llm.int8", "dit.int8"}
    for name, command in commands.items():
        assert "--atol 0.05 --rtol 0.05 --check-error-stat mean --check-average" in command
        args = shlex.split(command)
        done = subprocess.run([str(polygraphy), *args[1:]], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "PASSED" in done.stdout + done.stderr, f"{name}: {done.stdout[-2000:]}"


def test_bench_times_int8_against_fp32_in_one_run_with_graph_sizes(tmp_path, calibrated):
    out = tmp_path / "bench"
    # every group quantized: what bench times is the recipe it is given (the measured one is the
    # build's, tested with the int8_graphs fixture); percentile, the default method, calibrates
    result = run("bench", "--no-condition-map", "--precision", "fp32,int8", "--runs", 2, "--warmup", 0, "--out", out,
                 "--calib-cache", calibrated[0].path.parent, "--quant-recipe", "all")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    assert data["precisions"] == ["fp32", "int8"]
    assert data["recipes"]["int8"]["source"] == "all" and len(data["recipes"]["int8"]["quantize"]) == 6
    for timing in data["latency"].values():
        assert timing["compiled"] == timing["fp32"] and timing["int8"]["runs"] == 2
    sizes = data["graph_bytes"]
    assert all(sizes["int8"][g] < sizes["fp32"][g] for g in ("vision", "llm", "dit"))
    assert "int8 p50 (speedup)" in result.output
    report = (out / "bench.md").read_text()
    assert "| module | fp32 p50 | int8 p50 (speedup)" in report
    assert "- int8 recipe (all): quantized vision_attention" in report


def test_eval_skips_bf16_and_fp8_on_onnx_runtime_with_one_line_each(capsys):
    from vlacompile.cli.eval import _runnable

    graphs = {"graphs": {"fp32": {}, "bf16": {}, "int8": {}, "fp8": {}}}
    assert _runnable(graphs, "onnxruntime") == ("fp32", "int8")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["bf16 graphs skipped: ONNX Runtime's CPU provider has no bf16 kernels (use --backend tensorrt)",
                     "fp8 graphs skipped: ONNX Runtime's CPU provider has no fp8 compute (use --backend tensorrt)"]
    assert _runnable(graphs, "tensorrt") == ("fp32", "bf16", "int8", "fp8")


def test_eval_runs_the_int8_graphs_closed_loop(int8_graphs, tmp_path):
    out = tmp_path / "eval"
    result = run("eval", "--graphs", int8_graphs, "--precision", "int8", "--no-reference", "--episodes", 1,
                 "--filmstrips", 0, "--out", out)
    assert result.exit_code == 0, result.output
    assert list(json.loads((out / "eval.json").read_text())["policies"]) == ["compiled int8 (onnxruntime)"]

"""`build`, `export` and `validate` from the command line, and the re-check with NVIDIA's own tool."""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.runtime import manifest

from ..conftest import CALIB


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_build_runs_every_step_and_summarizes(tmp_path, calibrated):
    out = tmp_path / "graphs"
    cache = calibrated[0].path.parent  # the session's calibration: a re-run reuses it
    result = run("build", "--layers", 22, "--tokens", 56, "--out", out, "--cache-dir", cache, "--calib", CALIB,
                 "--samples", 2, "--latency-runs", 2, "--eval-episodes", 2, "--condition-map-episodes", 10)
    assert result.exit_code == 0, result.output
    assert "calibration: reused" in result.output
    assert "L22 T56 M0.25 C5 +map" in result.output and "condition map" in result.output
    assert "engines: skipped: TensorRT is not installed" in result.output
    for row in ("params", "FLOPs per predict", "latency p50", "parity vs PyTorch", "fidelity (held out)",
                "closed-loop success (2 episodes)"):
        assert row in result.output
    summary = json.loads((out / "build.json").read_text())
    assert summary["parity"]["passed"] and len(summary["parity"]["graphs"]) == 6
    record = summary["passes"][-1]  # the map, fitted on 8 benchmark episodes, chosen on 2, is in the llm graph
    assert record["name"] == "condition_map" and record["changes"]["fit_samples"] == 32
    assert record["changes"]["installed"]  # on 32 frames only with the largest ridge (0.1): near the identity
    import onnx

    nodes = {n.name: n.op_type for n in onnx.load(out / "llm.fp32.onnx").graph.node}
    assert [op for name, op in nodes.items() if "condition_map" in name] == ["Gemm"]  # float32: no Casts
    assert set(summary["latency"]) == {"reference (PyTorch eager)", "compiled fp32 (ONNX Runtime)",
                                       "compiled fp16 (ONNX Runtime)"}
    assert summary["costs"]["compressed"][1]["params"] < summary["costs"]["reference"][1]["params"]
    manifest.verify(out, manifest.read(out))  # build.json, report.html and the parity files are sealed too
    assert {"build.json", "report.html"} <= set(manifest.read(out)["files"])
    assert set(summary["closed_loop"]["policies"]) == {"reference (PyTorch)", "compiled fp32 (onnxruntime)",
                                                       "compiled fp16 (onnxruntime)"}
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 5  # with the filmstrip


def test_polygraphy_run_rechecks_each_graph_with_the_saved_files(graphs, validated):
    """The commands the manifest records are the ones a user runs on a device (here --onnxrt)."""
    polygraphy = Path(sys.executable).parent / "polygraphy"
    for name, command in manifest.read(graphs)["parity"]["commands"].items():
        args = shlex.split(command)
        assert args[0] == "polygraphy"
        done = subprocess.run([str(polygraphy), *args[1:]], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        assert "PASSED" in done.stdout + done.stderr


def test_validate_fails_with_exit_1_and_names_the_broken_tensor(graphs, validated, calibrated, tmp_path):
    from ..compare.test_parity import _break_one_matmul

    folder = tmp_path / "graphs"
    shutil.copytree(graphs, folder)
    broken = _break_one_matmul(folder / "llm.fp32.onnx")
    manifest.seal(folder, manifest.read(folder), ["llm.fp32.onnx"])
    result = run("validate", "--graphs", folder, "--cache-dir", calibrated[0].path.parent, "--samples", 2,
                 "--precision", "fp32")
    assert result.exit_code == 1, result.output
    assert "parity: FAILED" in result.output
    assert f"(output of MatMul node '{broken}')" in result.output


@pytest.mark.parametrize("args,message", [
    (["validate", "--graphs", "no-such-folder"], "no-such-folder/manifest.json does not exist"),
    (["export", "--precision", "fp4"], "--precision 'fp4': give a comma-separated subset of fp32, fp16"),
    (["build", "--precision", ""], "--precision '': give a comma-separated subset"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_tampered_graphs_are_refused_by_validate(graphs, tmp_path):
    folder = tmp_path / "graphs"
    shutil.copytree(graphs, folder)
    (folder / "dit.fp16.onnx").write_bytes(b"not a graph")
    result = run("validate", "--graphs", folder)
    assert result.exit_code == 2
    assert "dit.fp16.onnx does not match its sha256" in result.output

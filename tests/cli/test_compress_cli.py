"""The compile flags from the command line: info's reductions, fidelity, and bad input."""

import json

import pytest
from click.testing import CliRunner

from vlacompile.cli import main

from ..conftest import CALIB


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_info_reproduces_the_published_parameter_reduction():
    data = json.loads(run("info", "--model", "cogact-base", "--json", "--no-condition-map").output)
    # EfficientVLA on CogACT-Base: 7.63 B -> 4.86 B parameters, FLOPs to 28.9 %.
    assert round(data["total"]["params"] / 1e9, 2) == 7.63
    assert round(data["compressed"]["total"]["params"] / 1e9, 2) == 4.86
    assert 0.27 < data["compressed"]["total"]["flops"] / data["total"]["flops"] < 0.31
    assert data["compressed"]["modules"]["vision"] == data["modules"]["vision"]
    # the condition map (on by default) adds one 4096 x 4096 Gemm and its bias to the llm graph
    mapped = json.loads(run("info", "--model", "cogact-base", "--json").output)["compressed"]["modules"]["llm"]
    assert mapped["params"] - data["compressed"]["modules"]["llm"]["params"] == 4096 * 4097
    assert mapped["flops"] - data["compressed"]["modules"]["llm"]["flops"] == 2 * 4096 * 4096


def test_info_with_every_pass_off_is_the_reference():
    data = json.loads(run("info", "--layers", "32", "--tokens", "256", "--mlp-sparsity", "0",
                          "--cache-interval", "1", "--json").output)
    assert data["compressed"]["modules"] == data["modules"]


def test_fidelity_writes_a_report(tmp_path, calibrated):
    out = tmp_path / "fid.json"
    result = run("fidelity", "--no-condition-map", "--calibration", str(calibrated[0].path), "--calib", str(CALIB),
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["samples"] == 12 and 0 < report["cognition_cosine"] <= 1  # 3 of 15 episodes held out, 4 frames each
    assert set(report["actions"]["per_dim"]) == {"x", "y", "z", "roll", "pitch", "yaw", "grip"}
    assert [p["name"] for p in report["passes"]] == ["layer_drop", "mlp_prune", "token_select", "cache"]


def test_fidelity_with_every_pass_off_is_exact(tmp_path, calibrated):
    out = tmp_path / "fid.json"
    result = run("fidelity", "--calibration", str(calibrated[0].path), "--out", str(out), "--layers", "32",
                 "--tokens", "256", "--mlp-sparsity", "0", "--cache-interval", "1")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["cognition_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert report["actions"]["overall"]["linf"] < 1e-5


@pytest.mark.parametrize("flags,message", [
    (["--layers", "0"], "--layers 0 is outside [1, 32]"),
    (["--layers", "33"], "--layers 33 is outside [1, 32]"),
    (["--tokens", "3"], "--tokens 3 is outside [4, 256]"),
    (["--tokens", "300"], "--tokens 300 is outside [4, 256]"),
    (["--mlp-sparsity", "1.0"], "--mlp-sparsity 1.0 is outside [0.0, 1.0)"),
    (["--mlp-sparsity", "-0.1"], "--mlp-sparsity -0.1 is outside"),
    (["--cache-interval", "0"], "--cache-interval 0 is outside"),
    (["--select-layer", "0"], "--select-layer 0 is outside [1, 31]"),
    (["--select-layer", "32"], "--select-layer 32 is outside [1, 31]"),
])
@pytest.mark.parametrize("command", ["info", "fidelity"])
def test_bad_flags_are_one_line_exit_2_and_write_nothing(tmp_path, monkeypatch, command, flags, message):
    monkeypatch.chdir(tmp_path)
    result = run(command, "--calib", str(CALIB), *flags) if command == "fidelity" else run(command, *flags)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_calibration_from_another_model_is_refused_by_the_cli(tmp_path, monkeypatch, tiny_folder, calibrated):
    import shutil

    import torch

    from vlacompile.models.cogact.checkpoint import find_weights

    folder = tmp_path / "other"
    shutil.copytree(tiny_folder, folder)
    blob = torch.load(find_weights(folder), weights_only=True)
    blob["model"]["projector"]["projector.0.bias"] += 1
    torch.save(blob, find_weights(folder))
    monkeypatch.chdir(tmp_path)
    result = run("fidelity", "--model", str(folder), "--calib", str(CALIB), "--calibration", str(calibrated[0].path))
    assert result.exit_code == 2 and "calibration of other weights" in result.output
    assert not (tmp_path / "fidelity.json").exists()


def test_calibrate_rejects_a_bad_select_layer_before_writing(tmp_path):
    result = run("calibrate", "--calib", str(CALIB), "--out", str(tmp_path / "cache"), "--select-layer", "0")
    assert result.exit_code == 2 and "--select-layer 0 is outside" in result.output
    assert not (tmp_path / "cache").exists()


def test_fidelity_creates_the_report_folder(tmp_path, calibrated):
    out = tmp_path / "reports" / "tiny" / "fid.json"
    result = run("fidelity", "--no-condition-map", "--calibration", str(calibrated[0].path), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["samples"] == 12  # 3 of 15 episodes held out
    assert [p.name for p in out.parent.iterdir()] == ["fid.json"]

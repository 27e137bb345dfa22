"""`vlacompile predict` and `info` from the command line, human and JSON forms."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.models import preset_names

from ..conftest import CALIB, REPO

IMAGE = str(CALIB / "images" / "ep00_step00.png")
RELEASED = [p for p in preset_names() if p not in ("cogact-tiny", "pi0-tiny")]  # no embedded weights


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_help_lists_only_working_commands():
    result = run("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    for command in listed:
        assert run(command, "--help").exit_code == 0


@pytest.mark.parametrize("preset", preset_names())
def test_info_human_and_json(preset):
    human = run("info", "--model", preset)
    assert human.exit_code == 0, human.output
    assert all(m in human.output for m in ("vision", "llm", "action_head", "total"))
    data = json.loads(run("info", "--model", preset, "--json").output)
    assert set(data["modules"]) == {"vision", "llm", "action_head"}
    assert all(m["params"] > 0 and m["flops"] > 0 for m in data["modules"].values())
    assert data["modules"]["action_head"]["steps"] == 10


def test_predict_human_and_json_agree_with_the_library(tiny, sample_image):
    data = json.loads(run("predict", "--image", IMAGE, "--instruction", "pick up the red block", "--seed", "5", "--json").output)
    expected = tiny.predict(sample_image, "pick up the red block", seed=5)
    np.testing.assert_allclose(np.array(data["actions"]), expected, atol=1e-6)
    human = run("predict", "--model", "cogact-tiny", "--image", IMAGE, "--instruction", "pick up the red block")
    assert human.exit_code == 0 and len(human.output.strip().splitlines()) == 2 + 16


def test_predict_from_a_checkpoint_folder(tiny_folder, tiny, sample_image):
    data = json.loads(run("predict", "--model", str(tiny_folder), "--image", IMAGE,
                          "--instruction", "pick up the red block", "--json").output)
    np.testing.assert_allclose(np.array(data["actions"]), tiny.predict(sample_image, "pick up the red block"), atol=1e-6)


@pytest.mark.parametrize("preset", RELEASED)
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_predict_on_a_released_preset_asks_for_its_checkpoint(preset, fmt):
    result = run("predict", "--model", preset, "--image", IMAGE, "--instruction", "pick up the red block", *fmt)
    assert result.exit_code == 2
    assert "no embedded weights" in result.output and "with --model PATH" in result.output


@pytest.mark.parametrize("args,message", [
    (["predict", "--model", "nope", "--image", IMAGE, "--instruction", "x"], "neither a preset"),
    (["predict", "--image", IMAGE, "--instruction", "  "], "--instruction is empty"),
    (["predict", "--image", str(REPO / "README.md"), "--instruction", "x"], "not a readable image"),
    (["info", "--model", str(REPO / "tests")], "checkpoints"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_console_script_runs_as_a_process():
    out = subprocess.run([sys.executable, "-m", "vlacompile", "info", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["model"] == "cogact-tiny"


def _commands():
    return [(name, cmd) for name, cmd in main.commands.items()]


def test_help_lists_commands_in_the_order_a_user_runs_them():
    listed = [line.split()[0] for line in run("--help").output.split("Commands:")[1].strip().splitlines()]
    assert listed[:4] == ["info", "predict", "calibrate", "fidelity"]
    assert listed.index("build") < listed.index("validate") < listed.index("package") < listed.index("run")


@pytest.mark.parametrize("name,command", _commands(), ids=[n for n, _ in _commands()])
def test_every_option_says_what_it_does(name, command):
    undocumented = [p.opts[0] for p in command.params if not p.hidden and not (p.help or "").strip()]
    assert not undocumented, f"{name}: {undocumented}"


@pytest.mark.parametrize("command", ["predict", "run"])
def test_the_prompt_budget_is_in_the_help(command):
    text = " ".join(run(command, "--help").output.split())
    assert "33 tokens" in text and "0 to 2**64-1" in text


def test_old_option_spellings_still_work_but_are_not_listed(calibrated, tmp_path):
    result = run("fidelity", "--no-condition-map", "--calibration", str(calibrated[0].path), "--calib", str(CALIB),
                 "--out", str(tmp_path / "f.json"))
    assert result.exit_code == 0, result.output
    text = run("fidelity", "--help").output
    assert "--calib-data" in text and "--calib-result" in text and "--calib-cache" in text
    assert "--calibration" not in text and "--cache-dir" not in text and "--calib " not in text

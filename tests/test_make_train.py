"""The Makefile's training targets replay the embedded models' records: each `vlacompile train` line
of `make train-default` / `make train-pi0`, parsed by the CLI itself, asks for the configuration and
objective that the matching stage of the shipped training.json recorded (its nested init records,
oldest first). The records are what the README and BENCHMARKS cite as how a model was made."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from vlacompile.cli.train import planned, train
from vlacompile.training import resolved

ROOT = Path(__file__).resolve().parents[1]
# Recorded but not asked for by a command line: where it ran and the budget it fitted --steps to.
IGNORED = {"device", "workers", "minutes", "init"}


def make_commands(target: str) -> list[list[str]]:
    """The `train` argument lists `make TARGET` would run (dry run; the venv counted as built)."""
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.replace("\\\n", " ")
    lines = [shlex.split(line) for line in out.splitlines() if " train " in line]
    return [words[words.index("train") + 1:] for words in lines]


def stages(record: dict) -> list[dict]:
    chain = []
    while record:
        chain.append(record)
        record = (record.get("init") or {}).get("record")
    return chain[::-1]


def asked(args: list[str], folder: Path) -> tuple[dict, bool, dict]:
    """The configuration `train ARGS` would run with; --init's folder (an earlier stage's output,
    absent here) stands in as `folder`, since only whether a stage continues one is recorded."""
    args = [*args]  # click's parser consumes the list it is given
    if "--init" in args:
        args[args.index("--init") + 1] = str(folder)
    params = train.make_context("train", args).params
    params.pop("threads"), params.pop("out")
    recipe, cfg = planned(**params)
    config = {**asdict(resolved(cfg, recipe)), "objective": asdict(recipe.objective)}
    defaults = asdict(type(recipe.objective)())
    return json.loads(json.dumps(config)), params["init"] is not None, json.loads(json.dumps(defaults))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make for the dry run")
@pytest.mark.parametrize("target,module", [("train-default", "cogact"), ("train-pi0", "pi0")])
def test_the_make_target_replays_the_shipped_record(target, module, tmp_path):
    import importlib

    embedded = importlib.import_module(f"vlacompile.models.{module}.embedded")
    chain = stages(embedded.training_record())
    commands = make_commands(target)
    assert len(commands) == len(chain), f"{target}: {len(commands)} commands for {len(chain)} recorded stages"
    for i, (args, record) in enumerate(zip(commands, chain)):
        config, continued, defaults = asked(args, tmp_path)
        recorded = record["config"]
        assert continued == (recorded["init"] is not None), f"stage {i + 1}: --init"
        for key in set(recorded) - IGNORED - {"objective"}:
            assert config[key] == recorded[key], f"stage {i + 1} ({' '.join(args)}): {key}"
        # Older records predate some fields; a field a record lacks must be at its default in the command,
        # which is what the code of that time did (every field was added with its old behaviour as default).
        for key, value in config["objective"].items():
            expected = recorded["objective"].get(key, defaults[key])
            assert value == expected, f"stage {i + 1} ({' '.join(args)}): objective.{key}"
        assert record["preset"] == chain[-1]["preset"]

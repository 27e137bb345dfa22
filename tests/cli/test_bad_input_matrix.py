"""The project's bad-input matrix: every way a user's input can be wrong, one row each, with the
one line it must produce. Each row ends in exit status 2 (the Python API: a UserError), one line,
no traceback, and nothing of the user's lost.

To add a row: append a Case to CLI_CASES (or an ApiCase to API_CASES). `argv` and `call` get the
`Env` below (shared inputs: an image, a validated graphs folder, a bundle, a calibration cache) and
the test's own folder; `setup` prepares files there; `kept` names files that must survive.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vlacompile.cli import main
from vlacompile.errors import UserError

from ..conftest import CALIB, REPO

IMAGE = str(CALIB / "images" / "ep00_step00.png")
LONG = " ".join(["pick up the red block"] * 2000)  # 10,000 words
USER_FILE = "my-notes.txt"


@dataclass
class Env:
    graphs: Path  # validated, default build flags
    bundle: Path  # its bundle folder (the archive is beside it)
    cache: Path  # the session's calibration cache
    calibration: Path  # one stored calibration in it
    cogact_folder: Path  # the embedded default in CogACT's released layout


def user_folder(tmp: Path, name: str = "out") -> Path:
    """A folder holding a user's own file, as --out."""
    folder = tmp / name
    folder.mkdir()
    (folder / USER_FILE).write_text("mine")
    return folder


def wide_png(tmp: Path) -> str:
    path = tmp / "depth16.png"
    Image.fromarray(np.full((240, 320), 40000, np.uint16)).save(path)  # PIL: mode I;16
    return str(path)


def bomb_png(tmp: Path) -> str:
    """A tiny file whose header claims 60000 x 60000 pixels (PIL refuses it before decoding)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    path = tmp / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))
    return str(path)


def text_file(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def calib_set(tmp: Path, lines: list[bytes]) -> str:
    folder = tmp / "calib"
    (folder / "images").mkdir(parents=True)
    shutil.copy(IMAGE, folder / "images" / "a.png")
    (folder / "manifest.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return str(folder)


def edited_graphs(env: Env, tmp: Path, edit: Callable[[dict], None]) -> str:
    """A copy of the graphs whose manifest.json was edited in place (not re-sealed)."""
    folder = tmp / "graphs"
    shutil.copytree(env.graphs, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return str(folder)


def unvalidated_graphs(env: Env, tmp: Path) -> str:
    """What a build killed during validation leaves: validate unseals the verdict before it starts."""
    from vlacompile.compare.validate import _unseal_validation
    from vlacompile.runtime import manifest

    folder = tmp / "graphs"
    shutil.copytree(env.graphs, folder)
    _unseal_validation(folder, manifest.read(folder))
    return str(folder)


def archive_with(env: Env, tmp: Path, add: Callable[[tarfile.TarFile], None]) -> str:
    """The bundle archive with extra members."""
    path = tmp / "bundle.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(env.bundle, arcname="bundle")
        add(tar)
    return str(path)


def extra_files(tar: tarfile.TarFile, count: int = 3) -> None:
    for i in range(count):
        info = tarfile.TarInfo(f"bundle/extra{i}.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))


def tampered_archive(env: Env, tmp: Path) -> str:
    folder = tmp / "src" / "bundle"
    shutil.copytree(env.bundle, folder)
    data = bytearray((folder / "tokenizer.json").read_bytes())
    data[100] ^= 1  # same size, other bytes
    (folder / "tokenizer.json").write_bytes(bytes(data))
    path = tmp / "tampered.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="bundle")
    return str(path)


def nan_checkpoint(tmp: Path) -> str:
    import torch

    from vlacompile.models import resolve
    from vlacompile.models.cogact.checkpoint import save_folder

    policy = resolve("cogact-tiny")
    with torch.no_grad():
        policy.model.action_model.net.final_layer.linear.weight[0, 0] = float("nan")
    return str(save_folder(policy, tmp / "nan-ckpt"))


def stored_calibration(env: Env, tmp: Path, damage: Callable[[Path], None]) -> str:
    folder = tmp / "calib-stored"
    shutil.copytree(env.calibration, folder)
    damage(folder)
    return str(folder)


def flip_byte(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Env, Path], list]
    message: str
    kept: Callable[[Path], list[Path]] = field(default=lambda tmp: [])


def graphs_args(env: Env, tmp: Path) -> list:
    return ["--calib-data", CALIB, "--calib-cache", env.cache]


CLI_CASES = [
    # data loss: an --out folder holding a user's file is never replaced
    Case("export over a user's folder", lambda e, t: ["export", "--out", user_folder(t), *graphs_args(e, t)],
         "is not a vlacompile output (my-notes.txt); choose another --out, or pass --force",
         lambda t: [t / "out" / USER_FILE]),
    Case("build over a user's folder", lambda e, t: ["build", "--out", user_folder(t), *graphs_args(e, t)],
         "is not a vlacompile output", lambda t: [t / "out" / USER_FILE]),
    Case("package over a user's folder", lambda e, t: ["package", "--graphs", e.graphs, "--out", user_folder(t)],
         "is not a vlacompile output", lambda t: [t / "out" / USER_FILE]),
    Case("export over graphs holding a user's file",
         lambda e, t: ["export", "--out", _with_user_file(e.graphs, t), *graphs_args(e, t)],
         "holds files vlacompile did not write (my-notes.txt)", lambda t: [t / "graphs" / USER_FILE]),
    Case("export over a bundle", lambda e, t: ["export", "--out", e.bundle, *graphs_args(e, t)],
         "is a bundle (`vlacompile package`), not a graphs folder"),
    Case("package --out .", lambda e, t: ["package", "--graphs", e.graphs, "--out", "."],
         "name a folder to write"),
    Case("package --out holding the graphs", lambda e, t: ["package", "--graphs", e.graphs, "--out", e.graphs.parent],
         "holds the graphs being packaged"),
    # memory: the prompt budget everywhere, before any work
    Case("predict, 10,000-word instruction", lambda e, t: ["predict", "--image", IMAGE, "--instruction", LONG],
         "more than the model's budget of 33"),
    Case("run, 10,000-word instruction",
         lambda e, t: ["run", "--bundle", e.bundle, "--image", IMAGE, "--instruction", LONG],
         "more than the model's budget of 33"),
    # the manifest is protected by its digest
    Case("run, manifest bos_id edited",
         lambda e, t: ["run", "--bundle", edited_graphs(e, t, lambda m: m["prompt"].update(bos_id=2)), "--image", IMAGE,
                       "--instruction", "pick up the red block"], "does not match its own digest"),
    Case("package, manifest normalization edited",
         lambda e, t: ["package", "--graphs", edited_graphs(e, t, lambda m: m["preprocess"]["normalizations"][0]
                                                          .update(std=[0.2, 0.2, 0.2])), "--out", t / "b"],
         "does not match its own digest"),
    Case("run, manifest of an older vlacompile",
         lambda e, t: ["run", "--bundle", edited_graphs(e, t, lambda m: m.update(schema="vlacompile.graphs/1")),
                       "--image", IMAGE, "--instruction", "x"], "written by an older vlacompile"),
    Case("run, manifest of a newer vlacompile",
         lambda e, t: ["run", "--bundle", edited_graphs(e, t, lambda m: m.update(schema="vlacompile.graphs/3")),
                       "--image", IMAGE, "--instruction", "x"], "written by a newer vlacompile; this one reads"),
    # an interrupted validation is not a validated folder
    Case("package, validation did not complete",
         lambda e, t: ["package", "--graphs", unvalidated_graphs(e, t), "--out", t / "b"],
         "validation did not complete; run `vlacompile validate"),
    Case("run, validation did not complete",
         lambda e, t: ["run", "--bundle", unvalidated_graphs(e, t), "--image", IMAGE, "--instruction", "x"],
         "validation did not complete"),
    # silent wrong answers
    Case("predict, NaN weights",
         lambda e, t: ["predict", "--model", nan_checkpoint(t), "--image", IMAGE, "--instruction", "x"],
         "holds NaN or inf values"),
    # pi0 (issue 12's bad-input list; the checkpoint cases are API rows in tests/models/pi0)
    Case("predict pi0 without --state", lambda e, t: ["predict", "--model", "pi0-tiny", "--image", IMAGE,
                                                       "--instruction", "x"], "give the robot state with --state (5"),
    Case("predict pi0, a state of the wrong length",
         lambda e, t: ["predict", "--model", "pi0-tiny", "--image", IMAGE, "--instruction", "x", "--state", "1,2,3"],
         "this policy takes a vector of 5 values"),
    Case("predict pi0, a state that is not numbers",
         lambda e, t: ["predict", "--model", "pi0-tiny", "--image", IMAGE, "--instruction", "x", "--state", "a,b"],
         "--state 'a,b' is not comma-separated numbers"),
    Case("predict pi0, more cameras than the preset takes",
         lambda e, t: ["predict", "--model", "pi0-tiny", *["--image", IMAGE] * 3, "--instruction", "x", "--state",
                       "0,0,0,0,1"], "got 3 camera images; pi0-tiny takes 1 to 2"),
    Case("a CogACT folder passed as pi0",
         lambda e, t: ["predict", "--model", e.cogact_folder, "--preset", "pi0-tiny", "--image", IMAGE,
                       "--instruction", "x", "--state", "0,0,0,0,1"], "is a pi0 preset but"),
    Case("a CogACT quantization group asked of pi0",
         lambda e, t: ["export", "--model", "pi0-tiny", "--precision", "int8", "--out", t / "g", "--quant-recipe",
                       text_file(t, "recipe.json", '{"quantize": ["llm_mlp"]}')],
         "no group named llm_mlp; the groups are vision_attention, vision_mlp, projector, vlm_attention"),
    Case("proportional token weighting asked of pi0",
         lambda e, t: ["export", "--model", "pi0-tiny", "--token-weighting", "proportional", "--out", t / "g"],
         "--token-weighting proportional: this model family's language stack takes no attention key bias; use "
         "--token-weighting none"),
    Case("run a CogACT bundle with a state", lambda e, t: ["run", "--bundle", e.bundle, "--image", IMAGE,
                                                          "--instruction", "x", "--state", "0,0,0,0,1"],
         "holds CogACT graphs: give them one --image and no --state"),
    Case("predict, 16-bit PNG", lambda e, t: ["predict", "--image", wide_png(t), "--instruction", "x"],
         "more than 8 bits per channel"),
    Case("run, 16-bit PNG", lambda e, t: ["run", "--bundle", e.bundle, "--image", wide_png(t), "--instruction", "x"],
         "more than 8 bits per channel"),
    Case("calibrate, image path outside the folder",
         lambda e, t: ["calibrate", "--calib-data", calib_set(t, [b'{"image": "/etc/hostname", "instruction": "x"}']),
                       "--calib-cache", t / "cache"], "must be a path inside"),
    Case("calibrate, image path with ..",
         lambda e, t: ["calibrate", "--calib-data", calib_set(t, [b'{"image": "../a.png", "instruction": "x"}']),
                       "--calib-cache", t / "cache"], "must be a path inside"),
    # a damaged calibration store
    Case("fidelity, stored calibration with a flipped byte",
         lambda e, t: ["fidelity", "--calib-result",
                       stored_calibration(e, t, lambda f: flip_byte(f / "calibration.json")),
                       "--calib-data", CALIB, "--out", t / "f.json"], "calibration.json does not match its digest"),
    Case("export, truncated tensors file",
         lambda e, t: ["export", "--out", t / "g", "--calib-result", stored_calibration(
             e, t, lambda f: (f / "tensors.safetensors").write_bytes((f / "tensors.safetensors").read_bytes()[:100])),
                       "--calib-data", CALIB],
         "tensors.safetensors is missing or does not match its sha256"),
    Case("fidelity, empty calibration.json",
         lambda e, t: ["fidelity", "--calib-result", stored_calibration(e, t, lambda f: (f / "calibration.json")
                                                                          .write_text("")), "--calib-data", CALIB,
                       "--out", t / "f.json"],
         "calibration.json is not readable JSON"),
    # bundles without limits
    Case("run, archive with extra files",
         lambda e, t: ["run", "--bundle", archive_with(e, t, extra_files), "--image", IMAGE, "--instruction", "x"],
         "member 'bundle/extra0.txt' is not listed in its manifest"),
    Case("run, archive with 20,000 extra files",
         lambda e, t: ["run", "--bundle", archive_with(e, t, lambda tar: extra_files(tar, 20_000)), "--image", IMAGE,
                       "--instruction", "x"], "more than 10000 members"),
    Case("run, tampered archive names the archive",
         lambda e, t: ["run", "--bundle", tampered_archive(e, t), "--image", IMAGE, "--instruction", "x"],
         "tampered.tar.gz:bundle/tokenizer.json does not match its sha256"),
    Case("run --backend tensorrt without engines",
         lambda e, t: ["run", "--bundle", e.bundle, "--backend", "tensorrt", "--image", IMAGE, "--instruction", "x"],
         "holds no TensorRT engines; build them on this device"),
    # one line instead of a traceback
    Case("predict, decompression bomb", lambda e, t: ["predict", "--image", bomb_png(t), "--instruction", "x"],
         "decompression-bomb guard"),
    Case("run, decompression bomb",
         lambda e, t: ["run", "--bundle", e.bundle, "--image", bomb_png(t), "--instruction", "x"],
         "decompression-bomb guard"),
    Case("predict, non-UTF-8 instruction",
         lambda e, t: ["predict", "--image", IMAGE, "--instruction", "pick up \udcff block"], "not valid UTF-8"),
    Case("run, non-UTF-8 instruction",
         lambda e, t: ["run", "--bundle", e.bundle, "--image", IMAGE, "--instruction", "pick \udce9"],
         "not valid UTF-8"),
    Case("calibrate, non-UTF-8 manifest",
         lambda e, t: ["calibrate",
                       "--calib-data", calib_set(t, [b'{"image": "images/a.png", "instruction": "caf\xe9"}']),
                       "--calib-cache", t / "cache"], "manifest.jsonl:1: not UTF-8 text"),
    Case("predict --seed 2**64", lambda e, t: ["predict", "--image", IMAGE, "--instruction", "x", "--seed", 2**64],
         "Invalid value for '--seed'"),
    Case("run --seed -1",
         lambda e, t: ["run", "--bundle", e.bundle, "--image", IMAGE, "--instruction", "x", "--seed", -1],
         "Invalid value for '--seed'"),
    Case("calibrate, one-line calibration set",
         lambda e, t: ["calibrate", "--calib-data", calib_set(t, [b'{"image": "images/a.png", "instruction": "x"}']),
                       "--calib-cache", t / "cache"], "calibration needs at least 2"),
    Case("validate, one-line calibration set",
         lambda e, t: ["validate", "--graphs", e.graphs,
                       "--calib-data", calib_set(t, [b'{"image": "images/a.png", "instruction": "x"}'])],
         "calibration needs at least 2"),
    Case("export --out on a folder it may not write", lambda e, t: ["export", "--out", "/sys/vlacompile-graphs",
                                                                   *graphs_args(e, t)], "cannot write /sys"),
    Case("fidelity --out under an existing file",
         lambda e, t: ["fidelity", "--out", REPO / "README.md" / "fid.json", *graphs_args(e, t)],
         "README.md is a file, not a folder"),
    Case("bench --backend torch --device cuda without CUDA",
         lambda e, t: ["bench", "--backend", "torch", "--device", "cuda"], "PyTorch sees no CUDA GPU here"),
    Case("bench --tokens ''", lambda e, t: ["bench", "--tokens", ""], "give integers separated by commas"),
    Case("bench bf16 on ONNX Runtime", lambda e, t: ["bench", "--precision", "bf16"],
         "ONNX Runtime has no CPU bf16 kernels"),
    Case("bench fp8 on ONNX Runtime", lambda e, t: ["bench", "--precision", "fp32,fp8"],
         "ONNX Runtime's CPU provider has no fp8 compute"),
    Case("export --quant-recipe that does not exist",
         lambda e, t: ["export", "--precision", "int8", "--quant-recipe", t / "recipe.json", "--out", t / "g",
                       *graphs_args(e, t)],
         "not auto, all or an existing JSON file"),
    Case("build --expert-mlp-sparsity on CogACT, whose action head has no gated MLPs",
         lambda e, t: ["build", "--expert-mlp-sparsity", "0", "--out", t / "g"], "--expert-mlp-sparsity is for pi0"),
    Case("build --condition-map on pi0, whose expert reads no single vector",
         lambda e, t: ["build", "--model", "pi0-tiny", "--condition-map", "--out", t / "g"],
         "reads no single conditioning vector"),
    Case("build --condition-map-data on a folder without a manifest",
         lambda e, t: ["build", "--condition-map-data", t, "--out", t / "g"], "no manifest.jsonl there"),
    Case("build --condition-map-episodes 2",
         lambda e, t: ["build", "--condition-map-episodes", 2, "--out", t / "g"],
         "--condition-map-episodes 2 is outside"),
    Case("a missing option", lambda e, t: ["predict", "--image", IMAGE], "Missing option '--instruction'"),
    Case("an unknown option of vlacompile itself", lambda e, t: ["--bogus"], "No such option '--bogus'"),
]


def _with_user_file(graphs: Path, tmp: Path) -> Path:
    folder = tmp / "graphs"
    shutil.copytree(graphs, folder)
    (folder / USER_FILE).write_text("mine")
    return folder


@pytest.fixture(scope="module")
def env(graphs, validated, calibrated, tiny_folder, tmp_path_factory) -> Env:
    from vlacompile.package import package

    bundle, _ = package(graphs, tmp_path_factory.mktemp("matrix") / "bundle")
    return Env(graphs, bundle, calibrated[0].path.parent, calibrated[0].path, tiny_folder)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_lost(case, env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may appear in the working folder either
    result = CliRunner().invoke(main, [str(a) for a in case.argv(env, tmp_path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert case.message in lines[0], lines[0]
    for path in case.kept(tmp_path):
        assert path.read_text() == "mine", path
    leftovers = [p.name for p in tmp_path.rglob(".*") if p.name.endswith((".partial", ".old", ".lock"))]
    assert not leftovers, leftovers


@dataclass(frozen=True)
class ApiCase:
    name: str
    call: Callable[[Env, Path], object]
    message: str


def _pipeline(env: Env, **kw):
    from vlacompile.runtime import GraphPipeline

    return GraphPipeline(env.graphs, **kw)


def _predict(env: Env, image=None, instruction="pick up the red block", **kw):
    from vlacompile.runtime import load

    with load(env.bundle) as policy:
        return policy.predict(Image.open(IMAGE) if image is None else image, instruction, **kw)


def _load(path):
    from vlacompile.runtime import load

    return load(path)


def _torch_predict(image=None, instruction="pick up the red block", **kw):
    from vlacompile.models import resolve

    return resolve().predict(Image.open(IMAGE) if image is None else image, instruction, **kw)


API_CASES = [
    ApiCase("runtime: float numpy image", lambda e, t: _predict(e, np.zeros((224, 224, 3), np.float32)),
            "pass a uint8 [H, W, 3] RGB array or a PIL image"),
    ApiCase("runtime: None instruction", lambda e, t: _predict(e, instruction=None), "the instruction must be a str"),
    ApiCase("runtime: negative seed", lambda e, t: _predict(e, seed=-3), "--seed -3: give an integer from 0"),
    ApiCase("runtime: noise of the wrong shape", lambda e, t: _predict(e, noise=np.zeros(5)), "noise has shape (5,)"),
    ApiCase("runtime: precision fp4", lambda e, t: _pipeline(e, precision="fp4"), "precision 'fp4' is not one of"),
    ApiCase("runtime: precision fp8 not exported", lambda e, t: _pipeline(e, precision="fp8"), "has no fp8 graphs"),
    ApiCase("runtime: load a missing archive", lambda e, t: _load(t / "x.tar.gz"), "x.tar.gz does not exist"),
    ApiCase("runtime: load an unvalidated folder", lambda e, t: _load(unvalidated_graphs(e, t)),
            "validation did not complete"),
    ApiCase("runtime: extract over a user's folder", lambda e, t: _extract_over_user_folder(e, t),
            "is not a vlacompile output"),
    ApiCase("torch: float numpy image", lambda e, t: _torch_predict(np.zeros((8, 8, 3))), "pass a uint8"),
    ApiCase("torch: None instruction", lambda e, t: _torch_predict(instruction=None), "the instruction must be a str"),
    ApiCase("torch: 10,000-word instruction", lambda e, t: _torch_predict(instruction=LONG), "budget of 33"),
    ApiCase("torch: seed beyond 64 bits", lambda e, t: _torch_predict(seed=2**64), "give an integer from 0"),
]


def _extract_over_user_folder(env: Env, tmp: Path):
    from vlacompile.runtime import extract

    user_folder(tmp, "bundle")
    return extract(env.bundle.with_name("bundle.tar.gz"), tmp)


@pytest.mark.parametrize("case", API_CASES, ids=[c.name for c in API_CASES])
def test_bad_input_to_the_python_apis_is_one_clear_error(case, env, tmp_path):
    with pytest.raises(UserError) as err:
        case.call(env, tmp_path)
    assert case.message in str(err.value) and "\n" not in str(err.value), str(err.value)

"""Bundles: round trip, the runtime's actions, and every way a bundle can be bad."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.errors import UserError
from vlacompile.package import package
from vlacompile.runtime import GraphPipeline, extract, load, manifest, provenance


@pytest.fixture(scope="module")
def bundle(graphs, validated, tmp_path_factory):
    return package(graphs, tmp_path_factory.mktemp("pkg") / "bundle")


def test_bundle_round_trip_runs_like_the_graphs(bundle, graphs, tmp_path, sample_image, tiny):
    folder, archive = bundle
    unpacked = extract(archive, tmp_path)
    assert unpacked == tmp_path / "bundle"
    m = manifest.read(unpacked)
    for name in ("tokenizer.json", "dataset_statistics.json", "llm.fp16.onnx", "dit.inputs.json",
                 "vision.reference.json"):
        assert name in m["files"]
    assert m["sources"]["llm.fp32.onnx"] == manifest.read(graphs)["files"]["llm.fp32.onnx"]
    noise = tiny.noise(5).numpy()
    with load(unpacked) as policy, GraphPipeline(graphs) as reference:
        assert (policy.precision, policy.backend) == ("fp32", "onnxruntime")  # no TensorRT here
        got = policy.predict(sample_image, "put the apple into the bowl", noise=noise)
        want = reference.predict(sample_image, "put the apple into the bowl", noise=noise)
    np.testing.assert_array_equal(got, want)


def test_runtime_gives_the_pytorch_actions(bundle, compiled, tiny):
    sample = compiled.heldout[4]
    noise = tiny.noise(11)
    pixels, ids = tiny.encode(sample.load_image(), sample.instruction)
    with torch.no_grad():
        want = compiled.model(pixels, ids, noise)[0].numpy()
    with load(bundle[0]) as policy:
        got = policy.predict_normalized(sample.load_image(), sample.instruction, noise.numpy())
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("name,damage", [
    ("tokenizer.json", lambda b: b.replace(b"pick", b"kcip", 1)),
    ("dit.fp32.onnx", lambda b: b[: len(b) // 3]),
    ("dataset_statistics.json", lambda b: b + b" "),
])
def test_a_tampered_or_truncated_file_is_refused_by_name(bundle, tmp_path, name, damage):
    unpacked = extract(bundle[1], tmp_path)
    path = unpacked / name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError, match=f"{name} does not match its sha256"):
        load(unpacked)


def _archive_with(tmp_path, member: tarfile.TarInfo, data: bytes = b"x") -> "Path":  # noqa: F821
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("bundle/manifest.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("member,message", [
    (tarfile.TarInfo("bundle/../escaped.txt"), "points outside the bundle"),
    (tarfile.TarInfo("/tmp/absolute.txt"), "absolute path"),
    (_link("bundle/tokenizer.json", "/etc/passwd"), "link or special file"),
    (_link("bundle/graph.onnx", "bundle/manifest.json", tarfile.LNKTYPE), "link or special file"),
])
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path, member, message):
    archive = _archive_with(tmp_path, member)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UserError, match=message):
        extract(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_a_corrupt_archive_is_one_error(tmp_path):
    archive = tmp_path / "bundle.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UserError, match="not a readable bundle archive"):
        extract(archive, tmp_path)


def _fake_engines(folder, graphs, precision="fp16", tensorrt="10.3.0", cc="8.7"):
    """Engine files with records, as `vlacompile engines` would leave them (the bytes are not an
    engine: nothing here loads them, the checks refuse them first)."""
    folder.mkdir(exist_ok=True)
    m = manifest.read(graphs)
    for graph in m["pipeline"]:
        engine = folder / provenance.engine_name(graph, precision)
        engine.write_bytes(f"engine for {graph}".encode())
        record = provenance.record(engine, graphs / m["graphs"][precision][graph]["file"], precision, tensorrt,
                                   {"name": "NVIDIA Jetson AGX Orin", "compute_capability": cc}, {})
        engine.with_suffix(".json").write_text(json.dumps(record))
    return folder


def test_engines_from_another_tensorrt_or_gpu_are_refused_with_the_rebuild_command(graphs, tmp_path):
    engines = _fake_engines(tmp_path / "engines", graphs, tensorrt="10.0.1", cc="8.7")
    m = manifest.read(graphs)
    here = {"tensorrt": "10.3.0", "gpu": "NVIDIA Jetson AGX Orin", "compute_capability": "8.7"}
    with pytest.raises(UserError) as err:
        provenance.engine_files(graphs, m, "fp16", engines, here)
    text = str(err.value)
    assert "built with TensorRT 10.0.1" in text and "this device has 10.3.0" in text
    assert f"vlacompile engines --graphs {graphs} --precision fp16 --out {engines}" in text
    other_gpu = {**here, "tensorrt": "10.0.1", "compute_capability": "9.0", "gpu": "NVIDIA H100"}
    with pytest.raises(UserError, match="compute capability 8.7 .* this device has 9.0"):
        provenance.engine_files(graphs, m, "fp16", engines, other_gpu)
    same = {**here, "tensorrt": "10.0.1"}
    assert set(provenance.engine_files(graphs, m, "fp16", engines, same)) == {"vision", "llm", "dit"}


def test_an_engine_from_other_graphs_or_modified_is_refused(graphs, tmp_path):
    engines = _fake_engines(tmp_path / "engines", graphs)
    m = manifest.read(graphs)
    here = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}
    (engines / "dit.fp16.engine").write_bytes(b"changed")
    with pytest.raises(UserError, match="dit.fp16.engine does not match the sha256 in its record"):
        provenance.engine_files(graphs, m, "fp16", engines, here)
    other = {**m, "files": {**m["files"], "llm.fp16.onnx": "0" * 64}}
    _fake_engines(engines, graphs)
    with pytest.raises(UserError, match="llm.fp16.engine was built from another llm.fp16.onnx"):
        provenance.engine_files(graphs, other, "fp16", engines, here)


def test_an_engines_only_bundle_needs_tensorrt(graphs, validated, tmp_path):
    engines = _fake_engines(tmp_path / "engines", graphs)
    folder, _ = package(graphs, tmp_path / "bundle", engines, onnx=False)
    m = manifest.read(folder)
    assert not any(name.endswith(".onnx") for name in m["files"]) and "engines/dit.fp16.engine" in m["files"]
    with pytest.raises(UserError, match="engines only and TensorRT is not installed"):
        load(folder)


def test_run_and_engines_from_the_command_line(bundle, sample_image, tmp_path):
    image = tmp_path / "frame.png"
    sample_image.save(image)
    result = CliRunner().invoke(main, ["run", "--bundle", str(bundle[1]), "--image", str(image),
                                       "--instruction", "pick up the red block", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    with load(bundle[0]) as policy:
        want = policy.predict(sample_image, "pick up the red block", seed=2)
    np.testing.assert_allclose(np.array(data["actions"]), want, atol=1e-5)
    assert data["runtime"] == "fp32 on onnxruntime"
    no_trt = CliRunner().invoke(main, ["engines", "--graphs", str(bundle[0])])
    assert no_trt.exit_code == 2 and "TensorRT is not installed" in no_trt.output


def test_tensorrt_engines_validate_like_onnx(graphs, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it cannot be on this project's machines)")
    if provenance.gpu() is None:
        pytest.skip("no CUDA GPU: TensorRT engines need one")
    from vlacompile.engines import EngineConfig, build_engines

    from PIL import Image

    engines = tmp_path / "engines"
    build_engines(graphs, engines, EngineConfig("fp16"), progress=False)
    image = Image.fromarray(np.full((224, 224, 3), 120, np.uint8))
    with GraphPipeline(graphs, "fp16", "tensorrt", engines=engines) as trt_policy, \
            GraphPipeline(graphs, "fp16") as ort_policy:
        a = trt_policy.predict_normalized(image, "pick up the red block", seed=0)
        b = ort_policy.predict_normalized(image, "pick up the red block", seed=0)
    np.testing.assert_allclose(a, b, atol=3e-2)


def test_a_sparse_20_gib_member_is_refused_before_anything_is_written(bundle, tmp_path):
    """GNU tar stores a sparse file in a few bytes; unpacked it would fill 20 GiB."""
    import shutil
    import subprocess

    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to make a sparse archive")
    src = tmp_path / "src" / "bundle"
    shutil.copytree(bundle[0], src)
    with open(src / "big.bin", "wb") as f:
        f.truncate(20 * 2**30)
    archive = tmp_path / "sparse.tar.gz"
    subprocess.run(["tar", "-czSf", str(archive), "-C", str(src.parent), "bundle"], check=True)
    assert archive.stat().st_size < 50 * 2**20
    dest = tmp_path / "dest"
    with pytest.raises(UserError, match="member 'bundle/big.bin' is not listed in its manifest"):
        extract(archive, dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_an_archive_that_does_not_fit_is_refused_with_the_sizes(bundle, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))  # a full disk
    with pytest.raises(UserError, match=r"needs [0-9.]+ MB to unpack and .* has 0.0 MB free; free some space"):
        extract(bundle[1], tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit", [
    lambda m: m["prompt"].update(bos_id=m["prompt"]["bos_id"] + 1),
    lambda m: m["prompt"].update(template=m["prompt"]["template"].replace("robot", "robat")),
    lambda m: m["prompt"].update(suffix_ids=m["prompt"]["suffix_ids"][:1]),
    lambda m: m["preprocess"]["normalizations"][0]["mean"].__setitem__(0, 0.4),
    lambda m: m["preprocess"]["normalizations"][1]["std"].__setitem__(2, 0.6),
    lambda m: m["postprocess"].update(gripper_dim=5),
    lambda m: m["noise"].update(generator="torch.randn"),
    lambda m: m.update(files={**m["files"], "extra.txt": "0" * 64}),
])
def test_every_edit_of_the_manifest_is_refused(bundle, tmp_path, edit):
    """A single edit of the manifest's content (it changed the actions before it had a digest)."""
    import shutil

    folder = tmp_path / "bundle"
    shutil.copytree(bundle[0], folder)
    m = json.loads((folder / "manifest.json").read_text())
    edit(m)
    (folder / "manifest.json").write_text(json.dumps(m, indent=1))
    with pytest.raises(UserError, match="manifest.json does not match its own digest"):
        load(folder)


def test_load_takes_the_archive_and_cleans_up_after_itself(bundle, sample_image):
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("vlacompile-bundle.*"))
    with load(bundle[1]) as from_archive, load(bundle[0]) as from_folder:
        scratch = set(Path(tempfile.gettempdir()).glob("vlacompile-bundle.*")) - before
        assert len(scratch) == 1
        np.testing.assert_array_equal(from_archive.predict(sample_image, "pick up the red block", seed=4),
                                      from_folder.predict(sample_image, "pick up the red block", seed=4))
    assert not any(p.exists() for p in scratch)

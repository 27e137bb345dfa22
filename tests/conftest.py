"""Shared fixtures: the embedded default policy and small checkpoints in the released layout."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CALIB = REPO / "calib_data"


def small_calib_folder(tmp_path, lines: int = 6, drop_state: bool = False):
    """The first `lines` calibration samples as a set of two episodes (one held out), in `tmp_path`."""
    import json
    import shutil

    rows = [json.loads(t) for t in (CALIB / "manifest.jsonl").read_text().splitlines()[: lines]]
    (tmp_path / "images").mkdir(parents=True)
    for r in rows:
        shutil.copyfile(CALIB / r["image"], tmp_path / r["image"])
        r["episode"] = r["episode"] + len(rows) if r["step"] > 20 else r["episode"]  # two episodes at least
        if drop_state:
            del r["state"]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.fixture(scope="session")
def pi0_small_calib(tmp_path_factory) -> tuple[Path, Path]:
    """(calibration data, calibration cache) for pi0-tiny builds with the family's defaults: its layer
    search (--layer-method actions) runs once per session, over this set's 4 calibration samples."""
    root = tmp_path_factory.mktemp("pi0-calib")
    return small_calib_folder(root / "data"), root / "cache"


@pytest.fixture(scope="session")
def tiny():
    from vlacompile.models import resolve

    return resolve("cogact-tiny")


@pytest.fixture(scope="session")
def sample_image():
    from vlacompile.data.calib import load_calib

    return load_calib(CALIB)[0].load_image()


@pytest.fixture(scope="session")
def tiny_folder(tiny, tmp_path_factory) -> Path:
    from vlacompile.models.cogact.checkpoint import save_folder

    return save_folder(tiny, tmp_path_factory.mktemp("ckpt") / "cogact-tiny")


@pytest.fixture(scope="session")
def calibrated(tiny, tmp_path_factory):
    """(Calibration, held-out samples) for the embedded default on the shipped set."""
    from vlacompile import pipeline

    calib, _, heldout = pipeline.calibrate(tiny, CALIB, tmp_path_factory.mktemp("cache"), progress=False)
    return calib, heldout


@pytest.fixture(scope="session")
def encoded(tiny, sample_image):
    pixels, ids = tiny.encode(sample_image, "pick up the red block")
    return pixels, ids, tiny.noise(0)


@pytest.fixture(scope="session")
def compiled(tiny, calibrated):
    """The embedded default rewritten with the headline flags (--layers 22 --tokens 56 ...)."""
    from vlacompile import pipeline
    from vlacompile.cli.compile_options import compress_config

    config = compress_config(32, 256, 22, 56, 0.25, 5, "efficientvla", 2)
    return pipeline.rewrite(tiny, config, CALIB, stored=calibrated[0].path, progress=False)


@pytest.fixture(scope="session")
def trace_tensors(tiny, compiled):
    from vlacompile.models import export_declaration

    sample = compiled.heldout[0]
    return export_declaration(tiny).reference_tensors(tiny, compiled.model, sample, tiny.noise(0))


@pytest.fixture(scope="session")
def graphs(tiny, compiled, trace_tensors, tmp_path_factory) -> Path:
    """fp32 and fp16 graphs of `compiled`, exported once; tests that modify graphs copy the folder."""
    from vlacompile.export import ExportConfig, export

    out = tmp_path_factory.mktemp("export") / "graphs"
    export(tiny, compiled.model, out, ExportConfig(), trace_tensors, compiled.provenance(), progress=False)
    return out


@pytest.fixture(scope="session")
def validated(tiny, compiled, graphs):
    """Validation of `graphs` on 4 calibration samples (it also writes the parity files)."""
    from vlacompile.compare.validate import validate
    from vlacompile.data.calib import load_calib, spread

    return validate(graphs, tiny, compiled.model, spread(load_calib(CALIB), 4), progress=False)


@pytest.fixture(scope="session")
def int8_graphs(tiny, compiled, trace_tensors, tmp_path_factory) -> Path:
    """fp32 and int8 graphs of `compiled` with the default (measured) recipe, exported once. max
    calibration, whose scales a test can work out by hand (the default, percentile, runs in bench's test)."""
    from vlacompile.export import ExportConfig, export
    from vlacompile.quant import QuantConfig

    out = tmp_path_factory.mktemp("export-int8") / "graphs"
    export(tiny, compiled.model, out, ExportConfig(("fp32", "int8"), quant=QuantConfig("max")), trace_tensors,
           compiled.provenance(), progress=False, data=compiled.quant_data())
    return out

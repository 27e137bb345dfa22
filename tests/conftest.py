"""Shared fixtures: the embedded default policy and small checkpoints in the released layout."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CALIB = REPO / "calib_data"


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

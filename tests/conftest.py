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

"""pi0 fixtures: the synthetic pi0-tiny policy, one encoded observation, and a checkpoint in LeRobot's layout."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pi0_tiny():
    from vlacompile.models.pi0.policy import synthetic_policy

    return synthetic_policy("pi0-tiny")


@pytest.fixture(scope="session")
def pi0_inputs(pi0_tiny, sample_image):
    """One camera of two (the second slot masked), a padded prompt, a 5-dim state (the benchmark gripper's)."""
    import numpy as np

    return pi0_tiny.encode([sample_image], "put the apple into the bowl", np.linspace(-1, 1, 5))


@pytest.fixture(scope="session")
def pi0_folder(pi0_tiny, tmp_path_factory) -> Path:
    from vlacompile.models.pi0.checkpoint import save_folder

    return save_folder(pi0_tiny, tmp_path_factory.mktemp("pi0") / "pi0-tiny")

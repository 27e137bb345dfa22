"""Per-patch labels (sim/patches.py) against a hand-worked scene.

The camera puts table point (u, v) at x = 112 + u * unit(v), y = 67.2 + 134.4 v with
unit(v) = 179.2 (0.55 + 0.45 v) pixels per table unit; objects are drawn size(v) = 2 unit(v)."""

import numpy as np
import pytest

from vlacompile.sim.patches import COLOURS, GRID, KINDS, patch_labels
from vlacompile.sim.world import Gripper, Obj, World

U = 7 / 138.88  # at v = 0.5 (unit 138.88 px), x = 119: the middle of patch column 8


def grid(world):
    return patch_labels(world, 3.0).reshape(GRID, GRID, 5)


def test_an_object_labels_the_patches_its_box_covers_and_nothing_else():
    """A red cube at v = 0.5: base at (119, 134.4), 20.8 px wide and tall; its box with the top face and
    the 3 px margin spans x 105.6-132.4 and y 102.2-137.4, so patch centres (119; 105, 119, 133) are in:
    column 8, rows 7 to 9."""
    cube = Obj("cube", "red", U, 0.5)
    labels = grid(World([cube], Gripper(-0.5, 0.3, 0.4)))
    shows = labels[..., 0] == 1 + KINDS.index("cube")
    assert sorted(zip(*np.nonzero(shows))) == [(7, 8), (8, 8), (9, 8)]
    assert (labels[shows, 1] == 1 + COLOURS.index("red")).all()
    np.testing.assert_allclose(labels[8, 8, 2:], [1.5, 3 * U, 3 * 0.5 * cube.height], rtol=1e-6)
    assert (labels[12:, :, 0] == 0).all() and (labels[12:, :, 2:] == 0).all()  # the table's front shows nothing


def test_a_nearer_object_covers_a_farther_one():
    """A blue block at v = 0.56 (base y 142.5, 24.4 x 18.7 px) covers rows 8-9, columns 7-9: the cube
    behind it keeps only row 7."""
    labels = grid(World([Obj("block", "blue", U, 0.56), Obj("cube", "red", U, 0.5)], Gripper(-0.5, 0.3, 0.4)))
    kind = labels[..., 0]
    assert sorted(zip(*np.nonzero(kind == 1 + KINDS.index("cube")))) == [(7, 8)]
    assert sorted(zip(*np.nonzero(kind == 1 + KINDS.index("block")))) == [(r, c) for r in (8, 9) for c in (7, 8, 9)]
    np.testing.assert_allclose(labels[9, 9, 2:4], [3 * 0.56, 3 * U], rtol=1e-6)


def test_the_gripper_labels_its_jaws_with_its_own_position():
    """Open gripper at (u, v, z) = (-0.5, 0.3, 0.4): tips at (50.6, 58.4), drawn at scale 270 px; jaws
    and wrist span x 12.1-89.1 and y 4.4-63.8: columns 1-5, rows 0-4."""
    labels = grid(World([Obj("cube", "red", U, 0.5)], Gripper(-0.5, 0.3, 0.4)))
    jaws = labels[..., 0] == 1 + KINDS.index("gripper")
    assert sorted(zip(*np.nonzero(jaws))) == [(r, c) for r in range(5) for c in range(1, 6)]
    np.testing.assert_allclose(labels[2, 3, 1:], [0.0, 0.9, -1.5, 1.2], rtol=1e-6)


@pytest.mark.parametrize("family", ["pick", "stack"])
def test_demonstration_frames_carry_labels_only_when_asked(family):
    from vlacompile.sim.demos import episode_frames

    rng = lambda: np.random.default_rng(0)  # noqa: E731
    plain, labelled = episode_frames(family, 3, rng(), every=8), episode_frames(family, 3, rng(), every=8, patches=True)
    assert all(f.patches is None for f in plain)
    assert [f.patches.shape for f in labelled] == [(GRID * GRID, 5)] * len(plain)
    assert all((f.patches[:, 0] == 1 + KINDS.index("gripper")).any() for f in labelled)

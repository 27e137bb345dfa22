"""Dense per-patch labels of a camera frame: what each 14 x 14 patch shows and where that thing is.

The vision stage of `vlacompile train` regresses these from the visual tokens (training.py says
why). For each of the 16 x 16 patches, from the world state and the camera's projection:
- kind: 0 for table or room, 1 + the index of the object's kind in `KINDS`, or the gripper's class;
- colour: 0 for none (table, gripper), else 1 + the index of the object's colour in `COLOURS`;
- the centre of what the patch shows, in the action's base frame as the grounding targets are
  (x = v, y = u, z up; times POSITION_SCALE), zeros where the patch shows nothing.

A patch belongs to an object when its centre lies in the object's screen box (its drawn width, its
front face and the top face the camera looks down on, plus a 3-pixel margin); nearer objects
cover farther ones, and the gripper's jaws cover everything, as they are drawn. The boxes are the
renderer's own dimensions (render.DIMS), not its pixel masks: a round object's box corners count.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..data import render
from .camera import CLOSED_GAP, OPEN_GAP, SIZE

PATCH = 14
GRID = SIZE // PATCH  # 16
KINDS = (*render.DIMS, "gripper")
COLOURS = tuple(render.COLOURS)
MARGIN = 3.0  # pixels: a patch the object's edge passes through mostly shows the object
FIELDS = 5  # kind, colour, centre x, y, z


def _box_mask(x0, y0, x1, y1) -> np.ndarray:
    c = np.arange(GRID) * PATCH + PATCH / 2
    return ((c >= y0) & (c <= y1))[:, None] & ((c >= x0) & (c <= x1))[None, :]


@lru_cache(maxsize=1)
def _canvas() -> render.Canvas:
    return render.Canvas(SIZE)  # only its projection is used; building one allocates pixel grids


def patch_labels(world, scale: float) -> np.ndarray:
    """[GRID * GRID, FIELDS] float32 labels of the frame the camera renders of `world` (row-major
    patches, as the vision towers order their tokens)."""
    canvas = _canvas()
    kind = np.zeros((GRID, GRID), np.float32)
    colour = np.zeros((GRID, GRID), np.float32)
    centre = np.zeros((GRID, GRID, 3), np.float32)
    for o in sorted(world.objects, key=lambda o: (o.held, o.v, o.z)):  # the camera's drawing order
        x, y = canvas.project(o.u, o.v, o.z)
        s = canvas.size(o.v)
        w, h = s * render.DIMS[o.kind][0], s * render.DIMS[o.kind][1]
        m = _box_mask(x - w / 2 - MARGIN, y - h - 0.4 * w - MARGIN, x + w / 2 + MARGIN, y + MARGIN)
        kind[m] = 1 + KINDS.index(o.kind)
        colour[m] = 1 + COLOURS.index(o.colour) if o.colour in COLOURS else 0
        centre[m] = [scale * o.v, scale * o.u, scale * (o.z + 0.5 * o.height)]
    g = world.gripper
    x, y = canvas.project(g.u, g.v, g.z)
    s = 1.1 * canvas.size(g.v)  # the camera draws the gripper at this scale
    half = (CLOSED_GAP if g.closed else OPEN_GAP) * canvas.unit(g.v) / 2 + 0.07 * s
    m = _box_mask(x - half, y - 0.2 * s, x + half, y + 0.02 * s)  # jaws and wrist, not the arm above
    kind[m], colour[m], centre[m] = 1 + KINDS.index("gripper"), 0, [scale * g.v, scale * g.u, scale * g.z]
    return np.concatenate([kind[..., None], colour[..., None], centre], -1).reshape(GRID * GRID, FIELDS)


def named_patches(labels: np.ndarray, world, task, scale: float) -> np.ndarray:
    """[GRID * GRID] uint8: which named object each patch of `labels` shows: 1 the object the
    instruction names first (the target), 2 the second (the receptacle, or the object to stack on or
    move near), 0 neither; told apart by the centre each object's patches carry. A named object
    hidden behind a nearer one or the gripper has none."""
    out = np.zeros(labels.shape[0], np.uint8)
    for role, i in ((1, task.target), (2, task.other)):
        if i is not None:
            o = world.objects[i]
            centre = np.array([scale * o.v, scale * o.u, scale * (o.z + 0.5 * o.height)], np.float32)
            out[(labels[:, 0] > 0) & np.all(labels[:, 2:] == centre, axis=1)] = role
    return out


__all__ = ["COLOURS", "FIELDS", "GRID", "KINDS", "named_patches", "patch_labels"]

"""The robot's camera: a World -> a 224x224 RGB image, drawn by vlacompile.data.render.

Every frame is drawn in full from the state (no image-space tricks), but the parts that did not
change are reused: the room is drawn once per episode, the resting objects once per arrangement,
and each step repaints only the gripper's region (the arm, the jaws, a held object, and the
gripper's shadow on the table, which is what tells its height apart from its depth).
"""

from __future__ import annotations

import numpy as np

from ..data import render
from .world import World

SIZE = 224
CLOSED_GAP = 0.03  # jaw opening in table units when closed on nothing
OPEN_GAP = 0.32


class Camera:
    def __init__(self, look_seed: int, size: int = SIZE, supersample: int = 1):
        """`look_seed` fixes the room (wall, table top) and the arm's anchor: one per episode."""
        self.size, self.S = size, size * supersample
        rng = np.random.default_rng(look_seed)
        room = render.Canvas(2 * self.S)  # drawn once, so supersampled: wood grain aliases at 1x
        render.room(room, rng)
        self.room = np.asarray(room.image(self.S), np.float32) / 255.0
        self.anchor = (self.S * (0.5 + rng.uniform(-0.15, 0.15)), -0.1 * self.S)
        self.look_seed = look_seed
        self._static_key, self._static = None, None

    def _draw_object(self, c: render.Canvas, world: World, i: int) -> None:
        o = world.objects[i]
        x, y = c.project(o.u, o.v, o.z)
        rng = np.random.default_rng([self.look_seed, i])  # the same texture in every frame
        render.DRAW[o.kind](c, x, y, c.size(o.v), o.colour, rng)

    def _shadow(self, c: render.Canvas, o) -> tuple:
        x, y = c.project(o.u, o.v)
        s = c.size(o.v)
        w, h = s * render.DIMS[o.kind][0], s * render.DIMS[o.kind][1] * (1 + 2 * o.z / max(o.height, 1e-3))
        return x + 0.1 * w + 0.5 * h, y - 0.01 * w, 0.55 * w + 0.3 * h, 0.2 * w

    def static_layer(self, world: World) -> np.ndarray:
        """Room plus every object that is not held (with their shadows), back to front."""
        resting = [i for i, o in enumerate(world.objects) if not o.held]
        key = tuple((i, round(world.objects[i].u, 6), round(world.objects[i].v, 6), round(world.objects[i].z, 6))
                    for i in resting)
        if key != self._static_key:
            c = render.Canvas(self.S, self.room.copy())
            render.shadows(c, [self._shadow(c, world.objects[i]) for i in resting], 0.012 * self.S, 0.5)
            for i in sorted(resting, key=lambda i: (world.objects[i].v, world.objects[i].z)):
                self._draw_object(c, world, i)
            self._static_key, self._static = key, c.rgb
        return self._static

    def render(self, world: World):
        """The camera image (PIL, RGB, size x size)."""
        from PIL import Image

        c = render.Canvas(self.S, self.static_layer(world).copy())
        g, held = world.gripper, world.held()
        sx, sy = c.project(g.u, g.v)
        gs = 1.1 * c.size(g.v)
        gap = CLOSED_GAP if g.closed else OPEN_GAP
        if held is not None:
            gap = max(gap, 2 * world.objects[held].radius)
        gap_px = gap * c.unit(g.v)
        lift = min(g.z / 0.4, 1.0)  # a higher gripper casts a larger, fainter shadow
        blob = (sx + 0.04 * gs, sy, (0.6 * gap_px + 0.04 * gs) * (1 + 0.5 * lift), 0.03 * gs * (1 + lift))
        render.shadows(c.window(blob[0] - 3 * blob[2], blob[1] - 3 * blob[3] - 0.05 * self.S, blob[0] + 3 * blob[2],
                                blob[1] + 3 * blob[3] + 0.05 * self.S), [blob], 0.025 * self.S, 0.35 - 0.15 * lift)
        x, y = c.project(g.u, g.v, g.z)
        box = render.gripper_box(self.anchor, x, y, gs, gap_px)
        if held is not None:
            o = world.objects[held]
            ox, oy = c.project(o.u, o.v, o.z)
            w = c.size(o.v) * max(render.DIMS[o.kind])
            box = (min(box[0], ox - 1.5 * w), box[1], max(box[2], ox + 1.5 * w), max(box[3], oy + 0.3 * w))
        window = c.window(*box)
        if held is not None:
            self._draw_object(window, world, held)
        render.gripper(window, self.anchor, x, y, gs, gap_px, g.yaw)
        img = Image.fromarray((np.clip(c.rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
        return img if self.S == self.size else img.resize((self.size, self.size), Image.Resampling.LANCZOS)

"""Procedural table-top drawing: the scene renderer behind the simulator (vlacompile.sim) and so
behind calib_data/.

A robot-camera view of a table with everyday objects and a parallel-jaw gripper, drawn with PIL and
numpy only. Everything here draws onto a `Canvas` in pixel coordinates; `vlacompile.sim.camera`
decides what goes where. A canvas can be a window onto a larger one (`Canvas.window`), so a frame
that only moves the gripper redraws a small region instead of the whole image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

LIGHT = (-0.45, -0.55, 0.70)  # key light from the upper left (x right, y down, z to the camera)
COLOURS = {
    "red": (0.80, 0.10, 0.08), "blue": (0.10, 0.28, 0.80), "green": (0.12, 0.55, 0.20),
    "yellow": (0.98, 0.80, 0.10), "white": (0.93, 0.93, 0.91), "cream": (0.93, 0.88, 0.78),
    "coke": (0.74, 0.04, 0.06), "orange": (1.00, 0.52, 0.04), "teal": (0.20, 0.55, 0.60),
}
# Screen width and front height of each kind, in half table units: an object of kind k is drawn
# DIMS[k] * Canvas.size(v) pixels, and Canvas.size is twice the table's own pixels per unit.
DIMS = {"block": (0.085, 0.065), "cube": (0.075, 0.075), "can": (0.076, 0.13), "cup": (0.084, 0.09),
        "bowl": (0.17, 0.06), "plate": (0.22, 0.01), "apple": (0.085, 0.085), "orange": (0.085, 0.085),
        "sponge": (0.11, 0.05), "carrot": (0.06, 0.04)}
ZOOM = 2.0  # Canvas.size(v) / Canvas.unit(v): DIMS are in half table units


class Canvas:
    """Float RGB canvas with pixel-coordinate grids and the table's perspective.

    The table top is u in [-1, 1] (left to right) by v in [0, 1] (back to front); `unit(v)` is how
    many pixels one table unit spans at depth v (nearer is bigger), horizontally and vertically.
    """

    def __init__(self, S: int, rgb: np.ndarray | None = None, box: tuple[int, int, int, int] | None = None):
        self.S = S
        self.x0, self.y0, x1, y1 = box or (0, 0, S, S)
        self.Y, self.X = np.mgrid[self.y0:y1, self.x0:x1].astype(np.float32) + 0.5
        self.rgb = np.zeros((y1 - self.y0, x1 - self.x0, 3), np.float32) if rgb is None else rgb
        self.far, self.near = 0.30 * S, 0.90 * S  # rows of the table's back and front edges

    def window(self, x0: float, y0: float, x1: float, y1: float) -> "Canvas":
        """A canvas over part of this one (clipped to it); painting it paints this one."""
        box = (max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)), self.S), min(int(np.ceil(y1)), self.S))
        if box[2] <= box[0] or box[3] <= box[1]:
            box = (0, 0, 1, 1)
        view = self.rgb[box[1] - self.y0:box[3] - self.y0, box[0] - self.x0:box[2] - self.x0]
        return Canvas(self.S, view, box)

    def unit(self, v):  # pixels per table unit at depth v
        return 0.8 * self.S * (0.55 + 0.45 * v)

    def size(self, v):  # the scale objects are drawn at (DIMS are half units)
        return ZOOM * self.unit(v)

    def project(self, u, v, z=0.0):
        """Table point (u, v) at height z (table units) -> pixel (x, y)."""
        return self.S / 2 + u * self.unit(v), self.far + (self.near - self.far) * v - z * self.unit(v)

    def _mask(self, draw) -> np.ndarray:
        img = Image.new("L", (self.rgb.shape[1], self.rgb.shape[0]))
        draw(ImageDraw.Draw(img), self.x0, self.y0)
        return np.asarray(img, np.float32) / 255.0

    def poly(self, pts):
        return self._mask(lambda d, ox, oy: d.polygon([(p[0] - ox, p[1] - oy) for p in pts], fill=255))

    def ellipse(self, x, y, rx, ry, width=0):
        def draw(d, ox, oy):
            box = [x - rx - ox, y - ry - oy, x + rx - ox, y + ry - oy]
            d.ellipse(box, fill=None if width else 255, outline=255 if width else None, width=int(width))
        return self._mask(draw)

    def noise(self, rng, cells: int) -> np.ndarray:
        """Smooth value noise in [0, 1] over the whole image, cut to this window."""
        return _noise(rng, self.S, cells)[self.y0:self.y0 + self.rgb.shape[0], self.x0:self.x0 + self.rgb.shape[1]]

    def paint(self, m, colour):
        """Blend `colour` (one RGB, or one per pixel) in where mask m says, over m's bounding box only:
        most shapes are small, and a frame paints hundreds of them."""
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if not rows.size:
            return
        box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        colour = np.asarray(colour, np.float32)
        sub = self.rgb[box]
        sub += m[box][..., None] * ((colour[box] if colour.ndim == 3 else colour) - sub)

    def image(self, size: int | None = None) -> Image.Image:
        img = Image.fromarray((np.clip(self.rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
        return img if size in (None, self.S) else img.resize((size, size), Image.Resampling.LANCZOS)


def _noise(rng, S: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: low-frequency, so textures stay cheap to PNG-compress."""
    img = Image.fromarray(rng.random((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(img.resize((S, S), Image.Resampling.BICUBIC), np.float32).clip(0, 1)


def room(c: Canvas, rng) -> None:
    """Back wall, floor, and a wood or laminate table top whose grain converges with perspective."""
    S, X, Y = c.S, c.X, c.Y
    wall = np.array([(0.80, 0.79, 0.76), (0.72, 0.75, 0.78), (0.82, 0.78, 0.70)][rng.integers(3)], np.float32)
    lamp = 1.08 - 0.30 * Y / S - 0.15 * np.abs(X / S - 0.3)
    c.rgb[:] = wall * (lamp * (0.96 + 0.06 * c.noise(rng, 5)))[..., None]
    v = (Y - c.far) / (c.near - c.far)
    u = (X - S / 2) / c.unit(v)
    c.paint(((Y > c.far) & (np.abs(u) > 1)).astype(np.float32), (0.46, 0.44, 0.42))  # floor beside it
    n = c.noise(rng, 9)
    if rng.random() < 0.6:
        grain = 0.5 + 0.5 * np.sin(u * 70 + 2.5 * n + 0.8 * np.sin(v * 5))
        light, dark = np.array((0.74, 0.55, 0.36)), np.array((0.62, 0.43, 0.26))
        top = dark + (light - dark) * (grain ** 1.5)[..., None]
        top *= (1 - 0.35 * (np.abs((u * 2.5 + 5) % 1 - 0.5) > 0.485))[..., None]  # plank seams
    else:
        top = np.array([(0.86, 0.86, 0.84), (0.60, 0.64, 0.68), (0.90, 0.87, 0.80)][rng.integers(3)])
        top = top * (0.93 + 0.10 * n)[..., None]
    shade = (1.05 - 0.12 * np.abs(u + 0.3) - 0.08 * v)[..., None]
    c.paint(((v >= 0) & (v <= 1) & (np.abs(u) <= 1)).astype(np.float32), top * shade)
    edge = (Y > c.near) & (Y < c.near + 0.05 * S) & (np.abs(X - S / 2) < c.unit(1.0))
    c.paint(edge.astype(np.float32), top * 0.55 * (1 - 0.3 * (Y - c.near) / (0.05 * S))[..., None])


def _shade(c, tx, ty, m, col, spec=0.0, ambient=0.30):
    """Lambert + highlight for a surface whose normal has x/y parts (tx, ty) in [-1, 1]."""
    tz = np.sqrt(np.clip(1 - tx * tx - ty * ty, 0, 1))
    lam = np.clip(LIGHT[0] * tx + LIGHT[1] * ty + LIGHT[2] * tz, 0, 1)
    hl = spec * np.exp(-((tx + 0.40) ** 2 + (ty + 0.45) ** 2) / 0.02)
    c.paint(m, np.asarray(col, np.float32) * (ambient + 0.85 * lam)[..., None] + hl[..., None])


def _box(c, x, y, w, d, h, col, lean):
    """Cuboid standing on (x, y) = its bottom-front centre; `lean` skews depth edges to the vanishing point."""
    col = np.asarray(col, np.float32)
    l, r, top, ox = x - w / 2, x + w / 2, y - h, lean * d
    e = r if ox > 0 else l  # the side facing the image centre is the one the camera sees
    c.paint(c.poly([(e, y), (e, top), (e + ox, top - d), (e + ox, y - d)]), col * (0.50 if ox > 0 else 0.85))
    grad = 1 - 0.2 * np.clip((c.Y - top) / max(h, 1), 0, 1)
    c.paint(c.poly([(l, top), (r, top), (r, y), (l, y)]), col * 0.72 * grad[..., None])
    c.paint(c.poly([(l, top), (r, top), (r + ox, top - d), (l + ox, top - d)]), np.minimum(col * 1.1 + 0.07, 1))
    c.paint(c.poly([(l, top - 1), (r, top - 1), (r, top + 1), (l, top + 1)]), np.minimum(col * 1.2 + 0.2, 1))


def _cylinder(c, x, y, r, h, col, spec):
    e = 0.35 * r
    body = np.maximum(c.poly([(x - r, y - h), (x + r, y - h), (x + r, y), (x - r, y)]), c.ellipse(x, y, r, e))
    _shade(c, np.clip((c.X - x) / r, -1, 1), 0 * c.X, body, col, spec)
    return body, e


def _can(c, x, y, s, colour, rng):
    r, h = 0.038 * s, 0.13 * s
    body, e = _cylinder(c, x, y, r, h, COLOURS["coke"], 0.5)
    tx = np.clip((c.X - x) / r, -1, 1)
    wave = np.abs(c.Y - (y - 0.5 * h + 0.1 * h * np.sin(tx * 3))) < 0.06 * h  # the white swoosh
    _shade(c, tx, 0 * tx, body * wave, (0.95, 0.95, 0.95), 0.4)
    _shade(c, tx, 0 * tx, body * (c.Y > y - 0.07 * h), (0.72, 0.72, 0.74), 0.6)
    c.paint(c.ellipse(x, y - h, r, e), (0.80, 0.80, 0.82))
    c.paint(c.ellipse(x + 0.1 * r, y - h + 0.05 * e, 0.8 * r, 0.75 * e), (0.62, 0.62, 0.65))
    c.paint(c.ellipse(x - 0.3 * r, y - h - 0.1 * e, 0.25 * r, 0.22 * e), (0.40, 0.40, 0.42))  # tab


def _cup(c, x, y, s, colour, rng):
    col, r, h = np.array(COLOURS[colour]), 0.042 * s, 0.09 * s
    c.paint(c.ellipse(x + 1.05 * r, y - 0.5 * h, 0.45 * r, 0.3 * h, width=0.22 * r), col * 0.7)
    _, e = _cylinder(c, x, y, r, h, col, 0.3)
    c.paint(c.ellipse(x, y - h, r, e), np.minimum(col * 1.1, 1))
    c.paint(c.ellipse(x, y - h, 0.85 * r, 0.85 * e), col * 0.45)  # dark inside


def _bowl(c, x, y, s, colour, rng):
    col, R = np.array(COLOURS[colour]), 0.085 * s
    cy, hb, e = y - 0.06 * s, 0.06 * s, 0.38 * R
    body = c.ellipse(x, cy, R, hb) * (c.Y >= cy)
    _shade(c, np.clip((c.X - x) / R, -1, 1), 0 * c.X, body, col, 0.25)
    c.paint(c.ellipse(x, cy, R, e), np.minimum(col * 1.1, 1))
    # Inside, the wall facing the light is the far-right one; the near-left one is in shade.
    g = np.clip(0.75 + 0.25 * ((c.X - x) / R - (c.Y - cy) / e), 0.45, 1.05)
    c.paint(c.ellipse(x, cy + 0.02 * R, 0.9 * R, 0.85 * e), col * g[..., None])


def _plate(c, x, y, s, colour, rng):
    col, R, t = np.array(COLOURS[colour]), 0.11 * s, 0.008 * s
    e = 0.38 * R
    c.paint(c.ellipse(x, y, R, e), col * 0.70)  # the rim's thickness, seen below its top
    c.paint(c.ellipse(x, y - t, R, e), col)
    g = 0.92 - 0.06 * (c.Y - y) / e
    c.paint(c.ellipse(x, y - t + 0.03 * e, 0.66 * R, 0.62 * e), col * g[..., None])


def _fruit(c, x, y, s, colour, rng):
    r = 0.042 * s
    cy = y - r
    col = np.array(COLOURS["orange" if colour == "orange" else "red"])
    if colour == "orange":  # dimpled peel
        col = col * (0.92 + 0.10 * c.noise(rng, 90))[..., None]
    _shade(c, (c.X - x) / r, (c.Y - cy) / r, c.ellipse(x, cy, r, r), col, 0.45, 0.42)
    if colour == "orange":
        c.paint(c.ellipse(x + 0.1 * r, cy - 0.78 * r, 0.12 * r, 0.08 * r), (0.30, 0.40, 0.10))
    else:
        _rod(c, (x, cy - 0.75 * r), (x + 0.1 * r, cy - 1.2 * r), 0.07 * r, 0.05 * r, (0.35, 0.22, 0.10))
        c.paint(c.ellipse(x + 0.35 * r, cy - 1.05 * r, 0.25 * r, 0.1 * r), (0.20, 0.50, 0.15))


def _sponge(c, x, y, s, colour, rng):
    lean = (c.S / 2 - x) / c.S
    _box(c, x, y, 0.11 * s, 0.06 * s, 0.032 * s, COLOURS["yellow"], lean)
    _box(c, x, y - 0.032 * s, 0.11 * s, 0.06 * s, 0.018 * s, (0.13, 0.42, 0.16), lean)  # scrub layer


def _carrot(c, x, y, s, colour, rng):
    p0, p1 = (x - 0.09 * s, y - 0.02 * s), (x + 0.09 * s, y + 0.01 * s)
    _rod(c, p0, p1, 0.026 * s, 0.005 * s, COLOURS["orange"], ridges=True)
    for ang in (-0.5, 0.0, 0.45):  # leafy top
        tip = (p0[0] - 0.06 * s * np.cos(ang), p0[1] - 0.06 * s * np.sin(ang) - 0.01 * s)
        _rod(c, p0, tip, 0.008 * s, 0.004 * s, (0.18, 0.55, 0.15))


def _block(c, x, y, s, colour, rng, cube=False):
    w, h = DIMS["cube" if cube else "block"]
    _box(c, x, y, w * s, 0.05 * s, h * s, COLOURS[colour], (c.S / 2 - x) / c.S)


def _rod(c, p0, p1, r0, r1, col, ridges=False):
    """Tapered capsule from p0 to p1, shaded across its axis like a lit cylinder."""
    ax, ay = p1[0] - p0[0], p1[1] - p0[1]
    n = max(np.hypot(ax, ay), 1e-3)
    s = np.clip(((c.X - p0[0]) * ax + (c.Y - p0[1]) * ay) / (n * n), 0, 1)
    px, py = c.X - p0[0] - s * ax, c.Y - p0[1] - s * ay
    r = r0 + (r1 - r0) * s
    m = np.clip(r - np.hypot(px, py) + 0.5, 0, 1)
    t = np.clip((-px * ay + py * ax) / n / np.maximum(r, 1e-3), -1, 1)
    if ridges:  # the rings on a carrot
        col = np.asarray(col, np.float32) * (1 - 0.25 * (np.sin(s * 45) > 0.85))[..., None]
    _shade(c, -t * ay / n, t * ax / n, m, col, 0.15)


def shadows(c, blobs, blur, strength):
    """Soft dark ellipses (x, y, rx, ry) under objects: light from the upper left."""
    m = c._mask(lambda d, ox, oy: [d.ellipse([x - rx - ox, y - ry - oy, x + rx - ox, y + ry - oy], fill=255)
                                   for x, y, rx, ry in blobs])
    m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur)))
    c.rgb *= (1 - strength * m.astype(np.float32) / 255.0)[..., None]


DRAW = {  # kind -> draw(canvas, x, y, s, colour, rng) with (x, y) the bottom-front centre
   "block": _block, "cube": lambda *a: _block(*a, cube=True), "can": _can, "cup": _cup, "bowl": _bowl,
        "plate": _plate, "apple": _fruit, "orange": _fruit, "sponge": _sponge, "carrot": _carrot}


def gripper_box(anchor, x, y, s, gap) -> tuple[float, float, float, float]:
    """Pixel box (x0, y0, x1, y1) that `gripper` paints in: the arm from its anchor down to the tips."""
    half = gap / 2 + 0.07 * s
    return min(anchor[0], x) - half, 0.0, max(anchor[0], x) + half, y + 0.02 * s


def gripper(c, anchor, x, y, s, gap, yaw=0.0):
    """Parallel-jaw gripper with finger tips at (x, y), hanging from an arm that enters at the top.

    `yaw` turns the jaws about the vertical: the camera sees their spread foreshortened by |cos yaw|,
    and a light mark on the wrist flange moves to the side of the turn, so its sign shows too.
    """
    turn = max(abs(np.cos(yaw)), 0.15)
    fw, fl = 0.022 * s, 0.10 * s
    pw = (gap + 2 * fw) * turn + 0.01 * s
    _rod(c, anchor, (x, y - fl - 0.09 * s), 0.07 * s, 0.045 * s, (0.30, 0.31, 0.33))
    _rod(c, (x - 0.05 * s, y - fl - 0.08 * s), (x + 0.05 * s, y - fl - 0.08 * s), 0.02 * s, 0.02 * s,
         (0.12, 0.12, 0.13))  # wrist flange
    c.paint(c.ellipse(x + 0.045 * s * np.sin(yaw), y - fl - 0.08 * s, 0.012 * s, 0.012 * s), (0.85, 0.75, 0.20))
    _box(c, x, y - fl, pw, 0.03 * s, 0.04 * s, (0.62, 0.63, 0.65), 0.0)
    for side in (-1, 1):
        fx = x + side * (gap / 2 + fw / 2) * turn
        _box(c, fx, y, fw, 0.02 * s, fl, (0.16, 0.16, 0.18), -side * 0.4)
        px = fx - side * fw * 0.35  # rubber pad on the inner face
        c.paint(c.poly([(px - fw * 0.15, y - 0.45 * fl), (px + fw * 0.15, y - 0.45 * fl),
                        (px + fw * 0.15, y - 2), (px - fw * 0.15, y - 2)]), (0.45, 0.45, 0.47))

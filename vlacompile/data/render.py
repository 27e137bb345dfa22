"""Procedural table-top manipulation scenes: the calibration set the project ships in calib_data/.

Calibrating a quantized policy needs inputs that look like what it sees at run time, but no weights
or datasets can be downloaded here, so the project renders its own: a robot-camera view of a table
with 2-4 everyday objects and a parallel-jaw gripper that, over the steps of an episode, moves to
the object its instruction names. PIL + numpy only, seeded per episode, so files are byte-stable.

    python -m vlacompile.data.render [OUT_DIR]      # default: calib_data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..fsutil import write_text

STEPS = 4
ZOOM = 1.6  # how big objects look next to the table: a camera close to the work area
SUPERSAMPLE = 2  # draw at 2x and downsample: cheap anti-aliasing for PIL's hard-edged shapes
LIGHT = (-0.45, -0.55, 0.70)  # key light from the upper left (x right, y down, z to the camera)
COLOURS = {
    "red": (0.80, 0.10, 0.08), "blue": (0.10, 0.28, 0.80), "green": (0.12, 0.55, 0.20),
    "yellow": (0.98, 0.80, 0.10), "white": (0.93, 0.93, 0.91), "cream": (0.93, 0.88, 0.78),
    "coke": (0.74, 0.04, 0.06), "orange": (1.00, 0.52, 0.04), "teal": (0.20, 0.55, 0.60),
}
# Screen width and front height of each kind, in table units (scaled by depth when drawn).
DIMS = {"block": (0.085, 0.065), "cube": (0.075, 0.075), "can": (0.076, 0.13), "cup": (0.084, 0.09),
        "bowl": (0.17, 0.06), "plate": (0.22, 0.01), "apple": (0.085, 0.085), "orange": (0.085, 0.085),
        "sponge": (0.11, 0.05), "carrot": (0.06, 0.04)}


def _ep(instruction, target, seed, *objects):
    return {"instruction": instruction, "target": target, "seed": seed,
            "objects": [{"kind": k, "colour": c, "pos": (u, v)} for k, c, u, v in objects]}


# Positions are (u, v) on the table top: u in [-1, 1] left to right, v in [0, 1] back to front.
EPISODES = [
    _ep("pick up the red block", 0, 101, ("block", "red", -0.35, 0.55), ("block", "blue", 0.30, 0.38),
        ("bowl", "cream", 0.15, 0.80)),
    _ep("put the apple into the bowl", 0, 111, ("apple", "red", 0.38, 0.62), ("bowl", "blue", -0.35, 0.50),
        ("block", "green", 0.05, 0.28)),
    _ep("push the coke can to the left", 0, 103, ("can", "coke", 0.12, 0.48), ("plate", "white", -0.45, 0.72),
        ("cube", "yellow", 0.50, 0.35)),
    _ep("place the sponge on the plate", 0, 104, ("sponge", "yellow", -0.30, 0.45), ("plate", "white", 0.35, 0.68),
        ("orange", "orange", 0.35, 0.25)),
    _ep("stack the blue block on the green block", 0, 105, ("block", "blue", 0.40, 0.52),
        ("block", "green", -0.20, 0.62), ("block", "red", -0.50, 0.30), ("cup", "white", 0.10, 0.25)),
    _ep("move the orange near the cup", 0, 106, ("orange", "orange", -0.40, 0.58), ("cup", "teal", 0.40, 0.45),
        ("carrot", "orange", 0.00, 0.82)),
    _ep("knock over the coke can", 0, 133, ("can", "coke", -0.15, 0.45), ("apple", "red", 0.45, 0.62),
        ("sponge", "yellow", -0.45, 0.80)),
    _ep("lift the yellow cube", 0, 108, ("cube", "yellow", 0.25, 0.55), ("block", "red", -0.42, 0.45),
        ("plate", "white", -0.05, 0.85), ("cup", "white", -0.10, 0.22)),
    _ep("put the carrot on the plate", 0, 132, ("carrot", "orange", -0.30, 0.55), ("plate", "cream", 0.40, 0.58),
        ("bowl", "teal", 0.00, 0.25)),
    _ep("grasp the green block", 0, 110, ("block", "green", 0.05, 0.55), ("can", "coke", -0.45, 0.40),
        ("orange", "orange", 0.45, 0.32), ("bowl", "cream", 0.38, 0.82)),
]


class _Canvas:
    """Float RGB canvas with pixel-coordinate grids and the table's perspective."""

    def __init__(self, S: int):
        self.S = S
        self.Y, self.X = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
        self.rgb = np.zeros((S, S, 3), np.float32)
        self.far, self.near = 0.30 * S, 0.90 * S  # rows of the table's back and front edges

    def scale(self, v):  # pixels per table unit at depth v: nearer is bigger
        return self.S * (0.55 + 0.45 * v)

    def size(self, v):  # object scale: objects are drawn larger than the table's own unit
        return ZOOM * self.scale(v)

    def project(self, u, v):
        return self.S / 2 + 0.8 * u * self.scale(v), self.far + (self.near - self.far) * v

    def _mask(self, draw) -> np.ndarray:
        img = Image.new("L", (self.S, self.S))
        draw(ImageDraw.Draw(img))
        return np.asarray(img, np.float32) / 255.0

    def poly(self, pts):
        return self._mask(lambda d: d.polygon([tuple(p) for p in pts], fill=255))

    def ellipse(self, x, y, rx, ry, width=0):
        box = [x - rx, y - ry, x + rx, y + ry]
        return self._mask(lambda d: d.ellipse(box, fill=None if width else 255, outline=255 if width else None,
                                              width=int(width)))

    def paint(self, m, colour):
        self.rgb += m[..., None] * (np.asarray(colour, np.float32) - self.rgb)


def _noise(rng, S: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: low-frequency, so textures stay cheap to PNG-compress."""
    img = Image.fromarray(rng.random((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(img.resize((S, S), Image.Resampling.BICUBIC), np.float32).clip(0, 1)


def _room(c: _Canvas, rng) -> None:
    """Back wall, floor, and a wood or laminate table top whose grain converges with perspective."""
    S, X, Y = c.S, c.X, c.Y
    wall = np.array([(0.80, 0.79, 0.76), (0.72, 0.75, 0.78), (0.82, 0.78, 0.70)][rng.integers(3)], np.float32)
    lamp = 1.08 - 0.30 * Y / S - 0.15 * np.abs(X / S - 0.3)
    c.rgb[:] = wall * (lamp * (0.96 + 0.06 * _noise(rng, S, 5)))[..., None]
    v = (Y - c.far) / (c.near - c.far)
    u = (X - S / 2) / (0.8 * c.scale(v))
    c.paint(((Y > c.far) & (np.abs(u) > 1)).astype(np.float32), (0.46, 0.44, 0.42))  # floor beside it
    n = _noise(rng, S, 9)
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
    edge = (Y > c.near) & (Y < c.near + 0.05 * S) & (np.abs(X - S / 2) < 0.8 * c.scale(1.0))
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
        col = col * (0.92 + 0.10 * _noise(rng, c.S, 90))[..., None]
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


def _shadows(c, blobs, blur, strength):
    m = c._mask(lambda d: [d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=255) for x, y, rx, ry in blobs])
    m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur)))
    c.rgb *= (1 - strength * m.astype(np.float32) / 255.0)[..., None]


DRAW = {"block": _block, "cube": lambda *a: _block(*a, cube=True), "can": _can, "cup": _cup, "bowl": _bowl,
        "plate": _plate, "apple": _fruit, "orange": _fruit, "sponge": _sponge, "carrot": _carrot}


def _gripper(c, anchor, x, y, s, gap):
    """Parallel-jaw gripper with finger tips at (x, y), hanging from an arm that enters at the top."""
    fw, fl = 0.022 * s, 0.10 * s
    pw = gap + 2 * fw + 0.01 * s
    _rod(c, anchor, (x, y - fl - 0.09 * s), 0.07 * s, 0.045 * s, (0.30, 0.31, 0.33))
    _rod(c, (x - 0.05 * s, y - fl - 0.08 * s), (x + 0.05 * s, y - fl - 0.08 * s), 0.02 * s, 0.02 * s,
         (0.12, 0.12, 0.13))  # wrist flange
    _box(c, x, y - fl, pw, 0.03 * s, 0.04 * s, (0.62, 0.63, 0.65), 0.0)
    for side in (-1, 1):
        fx = x + side * (gap / 2 + fw / 2)
        _box(c, fx, y, fw, 0.02 * s, fl, (0.16, 0.16, 0.18), -side * 0.4)
        px = fx - side * fw * 0.35  # rubber pad on the inner face
        c.paint(c.poly([(px - fw * 0.15, y - 0.45 * fl), (px + fw * 0.15, y - 0.45 * fl),
                        (px + fw * 0.15, y - 2), (px - fw * 0.15, y - 2)]), (0.45, 0.45, 0.47))


def _gripper_pose(c, spec, rng, t):
    """Finger-tip point, scale, gap and table shadow at progress t in [0, 1] toward the target."""
    obj = spec["objects"][spec["target"]]
    u0, v0 = rng.uniform(-0.45, 0.45), rng.uniform(0.08, 0.2)
    (ut, vt), (w, h) = obj["pos"], DIMS[obj["kind"]]
    xs, ys = c.project(u0, v0)
    xe, ye = c.project(ut, vt)
    ye -= 0.35 * h * c.size(vt)  # at the end the fingers straddle the top of the object
    x, y, s = xs + (xe - xs) * t, 0.24 * c.S + (ye - 0.24 * c.S) * t, 1.1 * c.size(v0 + (vt - v0) * t)
    gap = w * c.size(vt) * (1.05 + 0.45 * (1 - t ** 4))  # open on the way, closing at the object
    return (x, y, s, gap), c.project(u0 + (ut - u0) * t, v0 + (vt - v0) * t)


def render_scene(episode: int, step: int, size: int = 256, steps: int = STEPS) -> Image.Image:
    """One camera frame: episode fixes the layout and textures, step how far the gripper has got."""
    spec = EPISODES[episode]
    rng = np.random.default_rng(spec["seed"])  # drawn in a fixed order, so every step shares the scene
    c = _Canvas(size * SUPERSAMPLE)
    _room(c, rng)
    objs = sorted(spec["objects"], key=lambda o: o["pos"][1])  # back to front: nearer ones occlude
    placed = [(o, *c.project(*o["pos"]), c.size(o["pos"][1])) for o in objs]
    # Light from the upper left: taller objects cast longer shadows to the right.
    dims = [(x, y, s * DIMS[o["kind"]][0], s * DIMS[o["kind"]][1]) for o, x, y, s in placed]
    _shadows(c, [(x + 0.1 * w + 0.5 * h, y - 0.01 * w, 0.55 * w + 0.3 * h, 0.2 * w) for x, y, w, h in dims],
             0.012 * c.S, 0.5)
    for o, x, y, s in placed:
        DRAW[o["kind"]](c, x, y, s, o["colour"], rng)
    anchor = (c.S * (0.5 + rng.uniform(-0.15, 0.15)), -0.1 * c.S)
    (gx, gy, gs, gap), (sx, sy) = _gripper_pose(c, spec, rng, min(step / max(steps - 1, 1), 1.0))
    _shadows(c, [(sx + 0.04 * gs, sy, 0.6 * gap + 0.04 * gs, 0.03 * gs)], 0.025 * c.S, 0.35)
    _gripper(c, anchor, gx, gy, gs, gap)
    img = Image.fromarray((np.clip(c.rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    return img.resize((size, size), Image.Resampling.LANCZOS)


def write_calib_set(out_dir, steps: int = STEPS) -> int:
    """Render every episode's steps to out_dir/images and index them in out_dir/manifest.jsonl."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for ep, spec in enumerate(EPISODES):
        for step in range(steps):
            rel = f"images/ep{ep:02d}_step{step:02d}.png"
            render_scene(ep, step, steps=steps).save(out / rel, optimize=True)
            rows.append({"image": rel, "instruction": spec["instruction"], "episode": ep, "step": step})
    write_text(out / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))  # never seen half-written
    return len(rows)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "calib_data"
    print(f"wrote {write_calib_set(target)} samples to {target}")

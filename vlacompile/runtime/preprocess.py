"""Image preprocessing as a manifest's "preprocess" entry declares it. numpy and PIL only.

The entry is data that this code reads, not a description of it: a filter, crop, scale, layout or
dtype that it does not implement is refused, never silently replaced by the usual one.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import UserError

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
CROPS = (None, "center")
FITS = ("stretch", "pad")  # resize ignoring the aspect ratio, or keeping it and padding with black (pi0)


STEPS = {
    "stretch": "image.convert('RGB'); crop; image.resize((size, size), PIL filter `resize`) ignoring the aspect "
               "ratio; x = uint8 HWC / scale; per normalization k: (x - mean_k) / std_k as CHW; concatenate on "
               "channels in order; add the batch axis",
    "pad": "image.convert('RGB'); crop; r = max(w / size, h / size); resize to (int(w / r), int(h / r)) with PIL "
           "filter `resize` and paste centred ((size - new) // 2 on each axis) on a black size x size canvas; "
           "x = uint8 HWC / scale; per normalization k: (x - mean_k) / std_k as CHW; concatenate on channels in "
           "order; add the batch axis"}


def declaration(size: int, normalizations: Sequence[dict], resize: str = "bicubic", crop: str | None = None,
                fit: str = "stretch") -> dict:
    """The manifest's "preprocess" entry (docs/CONTRACT.md, Image)."""
    return {"color": "RGB", "crop": crop, "size": size, "resize": resize, "fit": fit, "scale": 255.0,
            "normalizations": [dict(n) for n in normalizations], "layout": "NCHW", "dtype": "float32",
            "steps": STEPS[fit]}


def check(decl: dict) -> None:
    """Refuse a declaration this code would not follow to the letter."""
    problems = [f"{k} {decl.get(k)!r}" for k, ok in (
        ("color", decl.get("color") == "RGB"), ("resize", decl.get("resize") in FILTERS),
        ("crop", decl.get("crop") in CROPS), ("fit", decl.get("fit", "stretch") in FITS),
        ("layout", decl.get("layout") == "NCHW"),
        ("dtype", decl.get("dtype") == "float32"),
        ("scale", isinstance(decl.get("scale"), (int, float)) and decl.get("scale") > 0)) if not ok]
    if problems:
        raise UserError(f"the manifest's preprocessing asks for {', '.join(problems)}, which this runtime does not "
                        f"implement (it knows resize {sorted(FILTERS)}, crop {list(CROPS)}, fit {list(FITS)}, RGB, "
                        "NCHW, float32); upgrade vlacompile or export the graphs again")


def _crop(image: Image.Image, crop: str | None) -> Image.Image:
    if crop is None:
        return image
    w, h = image.size  # "center": the largest centred square
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def resize_with_pad(image: Image.Image, size: int, resample=Image.Resampling.BILINEAR) -> Image.Image:
    """Keep the aspect ratio, pad with black, centred (openpi-client `image_tools.resize_with_pad`)."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    ratio = max(width / size, height / size)
    new_w, new_h = int(width / ratio), int(height / ratio)
    resized = image.resize((new_w, new_h), resample=resample)
    canvas = Image.new(resized.mode, (size, size), 0)
    canvas.paste(resized, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def preprocess(image: Image.Image, decl: dict) -> np.ndarray:
    """RGB image -> [1, 3 * len(normalizations), size, size] float32, as `decl` says."""
    check(decl)
    size, resample = decl["size"], FILTERS[decl["resize"]]
    cropped = _crop(image.convert("RGB"), decl["crop"])
    if decl.get("fit", "stretch") == "pad":
        rgb = resize_with_pad(cropped, size, resample)
    else:
        rgb = cropped.resize((size, size), resample)
    x = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / np.float32(decl["scale"])  # [3, H, W]

    def norm(n: dict) -> np.ndarray:
        mean, std = (np.asarray(n[k], np.float32)[:, None, None] for k in ("mean", "std"))
        return (x - mean) / std

    return np.concatenate([norm(n) for n in decl["normalizations"]])[None]

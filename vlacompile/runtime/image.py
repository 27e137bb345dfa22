"""Camera images in: a file, a PIL image or a uint8 array, always 8-bit RGB out. numpy and PIL only.

Images with more than 8 bits per channel (16-bit PNG, 32-bit integer or float TIFF) are refused:
PIL's conversion to RGB clips them rather than scaling, which turns most pixels white.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import UserError

WIDE_MODES = ("I", "F")  # PIL's 32-bit integer / float modes; "I;16*" are 16-bit


def _wide(mode: str) -> bool:
    return mode in WIDE_MODES or mode.startswith("I;16")


def as_rgb(image, where: str = "the image") -> Image.Image:
    """An 8-bit RGB PIL image from a PIL image or a uint8 [H, W, 3] / [H, W] array."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise UserError(f"{where}: a {image.dtype} array of shape {image.shape}; pass a uint8 [H, W, 3] RGB array "
                            "or a PIL image")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise UserError(f"{where}: expected a PIL image or a uint8 RGB array, got {type(image).__name__}")
    if _wide(image.mode):
        raise UserError(f"{where} has {image.mode} pixels (more than 8 bits per channel), which converting to RGB "
                        "would clip; save it as 8-bit RGB (e.g. scale 16-bit values by 1/257)")
    return image.convert("RGB")


def open_image(path: Path, where: str | None = None) -> Image.Image:
    """Read and decode `path` as 8-bit RGB; every way it can fail is one UserError naming it."""
    where = where or f"--image {path}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit but under 2x: refuse too
            with Image.open(path) as im:
                im.load()
                return as_rgb(im, where)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"{where}: {str(exc.args[0]).split(',')[0]} (PIL's decompression-bomb guard); downscale it, "
                        "the policy sees 224x224") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{where}: not a readable image ({exc})") from None

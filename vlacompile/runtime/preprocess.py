"""Image preprocessing from declared constants (a manifest's "preprocess" entry). numpy and PIL only."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def preprocess(image: Image.Image, size: int, normalizations: Sequence[dict]) -> np.ndarray:
    """RGB image -> [1, 3 * len(normalizations), size, size] float32: resized (bicubic, no crop), then
    each encoder's {"mean", "std"} applied to its own copy, stacked on channels in the given order."""
    rgb = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0  # [3, H, W] in [0, 1]

    def norm(n: dict) -> np.ndarray:
        mean, std = (np.asarray(n[k], np.float32)[:, None, None] for k in ("mean", "std"))
        return (x - mean) / std

    return np.concatenate([norm(n) for n in normalizations])[None]

"""Image preprocessing of the DINOv2 + SigLIP tower. numpy and PIL only: the runtime reuses it."""

from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 224
DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def constants() -> dict:
    """What a deployment needs to reproduce this preprocessing (for manifests)."""
    return {
        "size": SIZE, "resize": "bicubic", "crop": None, "layout": "NCHW, DINOv2 channels 0-2, SigLIP 3-5",
        "dino": {"mean": DINO_MEAN, "std": DINO_STD}, "siglip": {"mean": SIGLIP_MEAN, "std": SIGLIP_STD},
    }


def preprocess(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """RGB image -> [1, 6, size, size] float32: resized (bicubic, no crop), then each encoder's norm."""
    rgb = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0  # [3, H, W] in [0, 1]

    def norm(mean, std):
        return (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]

    return np.concatenate([norm(DINO_MEAN, DINO_STD), norm(SIGLIP_MEAN, SIGLIP_STD)])[None]

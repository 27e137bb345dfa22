"""Image preprocessing of the DINOv2 + SigLIP tower: its constants, applied by the runtime's code."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ...runtime.preprocess import preprocess as apply_constants

SIZE = 224
DINO = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}  # ImageNet
SIGLIP = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def constants(size: int = SIZE) -> dict:
    """What a deployment needs to reproduce this preprocessing (the manifest's "preprocess" entry)."""
    return {"size": size, "resize": "bicubic", "crop": None, "layout": "NCHW, DINOv2 channels 0-2, SigLIP 3-5",
            "normalizations": [{"encoder": "dino", **DINO}, {"encoder": "siglip", **SIGLIP}]}


def preprocess(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """RGB image -> [1, 6, size, size] float32: resized (bicubic, no crop), then each encoder's norm."""
    return apply_constants(image, size, [DINO, SIGLIP])

"""Image preprocessing of the DINOv2 + SigLIP tower: its constants, applied by the runtime's code."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ...runtime import preprocess as runtime_preprocess

SIZE = 224
DINO = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}  # ImageNet
SIGLIP = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def constants(size: int = SIZE) -> dict:
    """What a deployment needs to reproduce this preprocessing (the manifest's "preprocess" entry):
    bicubic resize to a square, no crop (field-notes §1)."""
    return runtime_preprocess.declaration(size, [{"encoder": "dino", **DINO}, {"encoder": "siglip", **SIGLIP}])


def preprocess(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """RGB image -> [1, 6, size, size] float32: resized (bicubic, no crop), then each encoder's norm."""
    return runtime_preprocess.preprocess(image, constants(size))

"""pi0's image preprocessing, numpy and PIL only (the deployed runtime can use it as it is).

Each camera image is resized to 224x224 keeping its aspect ratio and padded with black, centered
(openpi-client `image_tools.resize_with_pad`, bilinear; LeRobot's `resize_with_pad_torch` does the
same on tensors), then scaled from [0, 255] to [-1, 1]. An absent camera slot is an all -1 image
with its mask off, as LeRobot's `_preprocess_images` fills missing cameras.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ...runtime.preprocess import resize_with_pad


def image_array(image: Image.Image, size: int) -> np.ndarray:
    """RGB image -> [3, size, size] float32 in [-1, 1]."""
    rgb = np.asarray(resize_with_pad(image.convert("RGB"), size), dtype=np.float32)
    return (rgb / 255.0 * 2.0 - 1.0).transpose(2, 0, 1)


def camera_batch(images: list[Image.Image], cameras: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `cameras` images, in slot order -> pixels [1, C, 3, size, size], valid [1, C] bool."""
    pixels = np.full((1, cameras, 3, size, size), -1.0, dtype=np.float32)
    valid = np.zeros((1, cameras), dtype=bool)
    for slot, image in enumerate(images):
        pixels[0, slot], valid[0, slot] = image_array(image, size), True
    return pixels, valid

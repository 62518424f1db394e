# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Full-size test images for the export tests: the tiny data's categories at MVTec AD resolution."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1]))
from fake_data import _add_defect, _normal_image

FULL_SIZE = 768  # MVTec AD images are 700-1024 px; the tiny model's input is 64 px


def full_size_images(count: int, defect: bool = False) -> np.ndarray:
    """Category 0..count-1 images (the fitted classes) at full size, ``(count, 3, S, S)`` float32 in [0, 1].

    Full-resolution pixel noise and stripes make the antialiasing of the downscale matter.
    """
    rng = np.random.default_rng(1)
    images = []
    for index in range(count):
        image = _normal_image(rng, index, FULL_SIZE)
        if defect and index == 0:
            image, _ = _add_defect(image, rng)
        images.append(image)
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write a ``(3, H, W)`` float image in [0, 1] as an 8-bit PNG."""
    Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(path)
    return path

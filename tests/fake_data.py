# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Tiny fake data sets in MVTec AD layout for tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

DEFECT_TYPES = ("broken", "contamination")


def _normal_image(rng: np.random.Generator, category_index: int, size: int) -> np.ndarray:
    """Category-specific stripes (frequency, angle, colour) plus per-image noise; ``(S, S, 3)`` uint8."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = 0.4 * category_index
    frequency = 3 + category_index % 5
    phase = rng.uniform(0, 2 * np.pi)
    stripes = 0.5 + 0.3 * np.sin(2 * np.pi * frequency * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    colour = 0.6 + 0.4 * np.array([np.sin(category_index), np.cos(category_index), np.sin(2 * category_index)]) ** 2
    image = stripes[..., None] * colour + rng.normal(0, 0.03, (size, size, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _add_defect(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a saturated ellipse; returns the image and its ``(S, S)`` uint8 0/255 mask."""
    size = image.shape[0]
    cy, cx = rng.uniform(0.25 * size, 0.75 * size, 2)
    ry, rx = rng.uniform(0.08 * size, 0.2 * size, 2)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    image = image.copy()
    image[mask] = rng.choice([0, 255], 3)
    return image, mask.astype(np.uint8) * 255


def make_mvtec_tree(
    root: Path,
    categories: Sequence[str],
    n_train: int = 4,
    n_test_good: int = 2,
    n_test_bad: int = 2,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write a tiny MVTec AD-format tree and return ``root``.

    Per category: ``train/good/NNN.png`` (``n_train``), ``test/good/NNN.png`` (``n_test_good``)
    and ``n_test_bad`` defective images alternating between ``test/broken`` and
    ``test/contamination``, with masks ``ground_truth/<defect>/NNN_mask.png``. Normal images are
    category-specific coloured stripes; defects are saturated ellipses (visibly different).

    Args:
        root: Output folder (created).
        categories: Category folder names.
        n_train: Normal training images per category.
        n_test_good: Normal test images per category.
        n_test_bad: Defective test images per category.
        size: Image side length.
        seed: Seed; identical arguments give identical files.

    Returns:
        ``root``.
    """
    root = Path(root)
    for category_index, category in enumerate(categories):
        folder = root / category
        rng = np.random.default_rng([seed, category_index])
        for split, count in (("train", n_train), ("test", n_test_good)):
            (folder / split / "good").mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.fromarray(_normal_image(rng, category_index, size)).save(
                    folder / split / "good" / f"{index:03d}.png"
                )
        for index in range(n_test_bad):
            defect = DEFECT_TYPES[index % len(DEFECT_TYPES)]
            image, mask = _add_defect(_normal_image(rng, category_index, size), rng)
            for sub, array, name in (
                ("test", image, f"{index:03d}.png"),
                ("ground_truth", mask, f"{index:03d}_mask.png"),
            ):
                (folder / sub / defect).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(folder / sub / defect / name)
    return root

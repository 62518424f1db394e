# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""In-texture defects with exact masks.

Every defect takes an ``(S, S, 3)`` float32 RGB image in ``[0, 1]``, a random generator and a
"donor" crop of another texture, and returns the defective image and its binary ``(S, S)`` mask.
The mask marks the pixels where the defect's blending weight is at least 0.5.

Defects change the texture locally and moderately (no saturated colour blobs on grey images):
colour-only or brightness-only anomalies pasted onto grey texture are solved by trivial
colour statistics and would not test a detector.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from anomalib_hvq.data.textures.shapes import branching_walk, densify, irregular_blob, smooth_curve, stroke

Defect = Callable[[np.ndarray, np.random.Generator, np.ndarray], tuple[np.ndarray, np.ndarray]]

# Defects smaller than this many pixels are invisible after the model's resize; retry instead.
MIN_DEFECT_PIXELS = 12


def _radius(rng: np.random.Generator, size: int, low: float, high: float) -> float:
    """Random blob radius; ``low``/``high`` are pixels at 256x256 and scale with ``size``."""
    return max(rng.uniform(low, high) * size / 256, 2.0)


def _blend(image: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Blend ``target`` over ``image`` with per-pixel ``weight`` of shape ``(S, S)``."""
    weight = weight[..., None]
    return np.clip(image * (1 - weight) + target * weight, 0.0, 1.0)


def scratch(image: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin curved bright or dark line whose depth varies along its length."""
    del donor
    size = image.shape[0]
    points = smooth_curve(rng, size, length=rng.uniform(0.25, 0.6) * size, bend=0.12)
    coverage = stroke(points, size, width=rng.uniform(1.0, 2.5))
    # A scratch reflects light (brighter) or exposes a darker layer, never a flat colour.
    sign = 1.0 if rng.random() < 0.5 else -1.0
    target = image + sign * rng.uniform(0.18, 0.32)
    return _blend(image, target, coverage), coverage >= 0.5


def crack(image: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin dark jagged line with a few branches."""
    del donor
    size = image.shape[0]
    walks = branching_walk(rng, size, steps=int(rng.uniform(0.2, 0.4) * size))
    coverage = np.zeros(image.shape[:2], np.float32)
    for number, walk in enumerate(walks):
        width = rng.uniform(1.2, 2.0) if number == 0 else rng.uniform(0.8, 1.3)
        coverage = np.maximum(coverage, stroke(densify(walk), size, width))
    target = image * (1 - rng.uniform(0.4, 0.65))
    return _blend(image, target, coverage), coverage >= 0.5


def hole(image: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dark pit whose walls are shaded by a directional light."""
    del donor
    size = image.shape[0]
    field = irregular_blob(rng, size, radius=_radius(rng, size, 6, 16), roughness=0.5)
    # Shade walls by the field gradient: the wall facing the light is lit, the other in shadow.
    grad_y, grad_x = np.gradient(ndimage.gaussian_filter(field, 1.5))
    light = rng.uniform(0, 2 * np.pi)
    shade = np.clip((grad_y * np.sin(light) + grad_x * np.cos(light)) * 6, -1, 1)
    depth = rng.uniform(0.45, 0.7)
    floor = ndimage.gaussian_filter(image, (2, 2, 0))  # the pit floor shows little texture
    target = floor * np.clip(1 - depth + 0.25 * shade, 0.05, 1.0)[..., None]
    return _blend(image, target, field), field > 0.5


def contamination(
    image: np.ndarray,
    rng: np.random.Generator,
    donor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Patch of another texture blended in with an irregular Perlin-like outline."""
    size = image.shape[0]
    field = irregular_blob(rng, size, radius=_radius(rng, size, 10, 26), roughness=1.2)
    # Match the donor's luminance statistics to the host and give it the host's mean colour, so
    # that only the texture differs (a colour mismatch alone would be trivial to detect).
    host_luma, donor_luma = image.mean(axis=2), donor.mean(axis=2)
    luma = (donor_luma - donor_luma.mean()) / (donor_luma.std() + 1e-6) * host_luma.std() + host_luma.mean()
    matched = luma[..., None] * image.mean(axis=(0, 1)) / (host_luma.mean() + 1e-6)
    opacity = rng.uniform(0.6, 0.9)
    weight = field * opacity
    return _blend(image, matched, weight), weight >= 0.5 * opacity


def blur(image: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-focus (smeared) region."""
    del donor
    size = image.shape[0]
    field = irregular_blob(rng, size, radius=_radius(rng, size, 12, 28), roughness=0.6)
    sigma = rng.uniform(2.0, 4.0)
    return _blend(image, ndimage.gaussian_filter(image, (sigma, sigma, 0)), field), field > 0.5


def stain(image: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtle tinted, slightly darker spot with a faint rim, like a dried liquid."""
    del donor
    size = image.shape[0]
    field = irregular_blob(rng, size, radius=_radius(rng, size, 10, 26), roughness=0.9)
    tints = np.array([[1.06, 0.99, 0.90], [1.03, 1.03, 0.90], [0.95, 0.99, 1.06]], np.float32)
    tint = tints[rng.integers(len(tints))] * rng.uniform(0.88, 0.96)
    rim = np.exp(-(((field - 0.55) / 0.08) ** 2)) * 0.05
    target = image * tint - rim[..., None]
    return _blend(image, target, field), field > 0.5


DEFECTS: dict[str, Defect] = {
    "blur": blur,
    "contamination": contamination,
    "crack": crack,
    "hole": hole,
    "scratch": scratch,
    "stain": stain,
}


def apply_defect(
    name: str,
    image: np.ndarray,
    rng: np.random.Generator,
    donor: np.ndarray,
    max_tries: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply defect ``name``, redrawing until its mask covers at least ``MIN_DEFECT_PIXELS``.

    Args:
        name: Key of :data:`DEFECTS`.
        image: ``(S, S, 3)`` float32 RGB image in ``[0, 1]``.
        rng: Random generator.
        donor: ``(S, S, 3)`` crop of another texture (used by ``contamination``).
        max_tries: Redraws before giving up.

    Returns:
        Defective image ``(S, S, 3)`` float32 and mask ``(S, S)`` bool.

    """
    for _ in range(max_tries):
        defective, mask = DEFECTS[name](image, rng, donor)
        if mask.sum() >= MIN_DEFECT_PIXELS:
            return defective, mask
    msg = f"Defect '{name}' produced an empty mask {max_tries} times; the image may be too small."
    raise RuntimeError(msg)

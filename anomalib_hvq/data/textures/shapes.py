# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Random shapes for the synthetic defects: smooth noise, irregular blobs and thin curves.

Everything draws from an explicit :class:`numpy.random.Generator`, so a defect is a pure
function of the generator state (no global RNG, identical bytes for identical seeds).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_noise(rng: np.random.Generator, size: int, scale: float, octaves: int = 3) -> np.ndarray:
    """Perlin-like fractal noise: blurred white noise summed over octaves.

    Args:
        rng: Random generator.
        size: Output side length ``S``.
        scale: Blur sigma of the coarsest octave in pixels (feature size).
        octaves: Number of octaves; each halves the sigma and the amplitude.

    Returns:
        ``(S, S)`` float32 array with zero mean and unit standard deviation.

    """
    noise = np.zeros((size, size), np.float32)
    for octave in range(octaves):
        layer = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), scale / 2**octave)
        noise += layer / (layer.std() + 1e-8) / 2**octave
    return (noise - noise.mean()) / (noise.std() + 1e-8)


def irregular_blob(
    rng: np.random.Generator,
    size: int,
    radius: float,
    roughness: float = 0.6,
    center: tuple[float, float] | None = None,
) -> np.ndarray:
    """Soft irregular blob: an ellipse whose border is warped by smooth noise.

    Args:
        rng: Random generator.
        size: Image side length ``S``.
        radius: Mean radius in pixels.
        roughness: Strength of the border warping (0: plain ellipse).
        center: ``(y, x)`` centre; random (away from the border) when ``None``.

    Returns:
        ``(S, S)`` float32 "inside-ness" field in ``[0, 1]``: above 0.5 inside the blob, ramping
        linearly across a ~4 px wide border, so ``field > 0.5`` is the exact binary shape and
        the field itself a soft blending weight.

    """
    if center is None:
        margin = radius + 4
        center = tuple(rng.uniform(margin, size - margin, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    aspect = rng.uniform(0.55, 1.0)
    dy, dx = yy - center[0], xx - center[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
    distance = np.sqrt(u**2 + v**2) / radius
    warp = smooth_noise(rng, size, scale=max(radius / 2.5, 2.0), octaves=2) * roughness * 0.35
    # 0.5 on the (warped) border; the factor ``radius / 4`` makes the ramp 1/4 per pixel.
    return np.clip(0.5 + (1.0 - distance + warp) * radius / 4.0, 0.0, 1.0)


def smooth_curve(rng: np.random.Generator, size: int, length: float, bend: float) -> np.ndarray:
    """Points of a random cubic Bezier curve (a scratch).

    Args:
        rng: Random generator.
        size: Image side length ``S``.
        length: Approximate chord length in pixels.
        bend: Lateral displacement of the control points relative to ``length``.

    Returns:
        ``(N, 2)`` float array of ``(y, x)`` points, spaced about half a pixel apart.

    """
    start = rng.uniform(0.15 * size, 0.85 * size, 2)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.sin(angle), np.cos(angle)])
    normal = np.array([-direction[1], direction[0]])
    end = start + direction * length
    c1 = start + direction * length / 3 + normal * rng.normal(0, bend * length)
    c2 = start + direction * 2 * length / 3 + normal * rng.normal(0, bend * length)
    t = np.linspace(0, 1, int(length * 2) + 2)[:, None]
    return (1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * end


def branching_walk(
    rng: np.random.Generator,
    size: int,
    steps: int,
    branch_probability: float = 0.025,
    max_branches: int = 3,
) -> list[np.ndarray]:
    """Jagged random walks that fork, like a crack.

    Args:
        rng: Random generator.
        size: Image side length ``S``.
        steps: Number of 1.5 px steps of the main walk; branches are shorter.
        branch_probability: Chance per step of forking a side branch.
        max_branches: Maximum number of side branches.

    Returns:
        List of ``(N_i, 2)`` ``(y, x)`` point arrays, the main walk first.

    """
    walks: list[np.ndarray] = []
    pending = [(rng.uniform(0.25 * size, 0.75 * size, 2), rng.uniform(0, 2 * np.pi), steps)]
    while pending:
        position, heading, n_steps = pending.pop()
        points = [position]
        for _ in range(n_steps):
            # Cracks run fairly straight with occasional sharp kinks.
            heading += rng.normal(0, 0.12) + (rng.normal(0, 0.8) if rng.random() < 0.08 else 0.0)
            position = position + 1.5 * np.array([np.sin(heading), np.cos(heading)])
            points.append(position)
            if len(walks) + len(pending) < max_branches and rng.random() < branch_probability:
                side = heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
                pending.append((position, side, int(n_steps * rng.uniform(0.25, 0.5))))
        walks.append(np.asarray(points))
    return walks


def stroke(points: np.ndarray, size: int, width: float) -> np.ndarray:
    """Anti-aliased coverage of a polyline of given width.

    Args:
        points: ``(N, 2)`` ``(y, x)`` points sampled densely (< 1 px apart) along the line.
        size: Image side length ``S``.
        width: Line width in pixels.

    Returns:
        ``(S, S)`` float32 coverage in ``[0, 1]``.

    """
    canvas = np.ones((size, size), bool)
    idx = np.round(points).astype(int)
    inside = (idx >= 0).all(axis=1) & (idx < size).all(axis=1)
    canvas[idx[inside, 0], idx[inside, 1]] = False
    if canvas.all():
        return np.zeros((size, size), np.float32)
    distance = ndimage.distance_transform_edt(canvas).astype(np.float32)
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0)


def densify(points: np.ndarray, spacing: float = 0.5) -> np.ndarray:
    """Resample a polyline at equal arc-length steps of at most ``spacing`` pixels."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    steps = np.linspace(0.0, arc[-1], max(int(np.ceil(arc[-1] / spacing)) + 1, 2))
    return np.stack([np.interp(steps, arc, points[:, 0]), np.interp(steps, arc, points[:, 1])], axis=1)

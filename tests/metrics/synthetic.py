# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Synthetic unified (multi-category) test predictions shared by the metrics tests."""

from dataclasses import dataclass

import torch

CATEGORIES = ("bottle", "cable", "screw")
# Each category has its own score scale and offset, as real detectors do across categories.
SCALE_SHIFT = {"bottle": (1.0, 0.0), "cable": (3.0, 10.0), "screw": (0.5, -4.0)}


@dataclass
class Synthetic:
    """Pooled test predictions of several categories (N samples, maps of H x W)."""

    categories: list[str]  # (N,)
    scores: torch.Tensor  # (N,) float32
    labels: torch.Tensor  # (N,) long
    maps: torch.Tensor  # (N, H, W) float32
    masks: torch.Tensor  # (N, H, W) bool


def make_synthetic(
    seed: int = 0,
    per_category: int = 8,
    size: int = 16,
    normal_only: tuple[str, ...] = (),
) -> Synthetic:
    """Half normal, half anomalous images per category (all normal for ``normal_only``).

    Anomalous images get one or two rectangular defects; maps are noise plus a bump on the defect,
    so the metrics are informative but imperfect. Samples of the categories are interleaved.
    """
    generator = torch.Generator().manual_seed(seed)
    n = per_category * len(CATEGORIES)
    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i, category in enumerate(categories):
        if category in normal_only or (i // len(CATEGORIES)) % 2 == 0:
            continue
        for _ in range(1 + i % 2):
            top, left = torch.randint(0, size - 4, (2,), generator=generator).tolist()
            height, width = torch.randint(2, 5, (2,), generator=generator).tolist()
            masks[i, top : top + height, left : left + width] = True
    maps = torch.rand(n, size, size, generator=generator) + 0.6 * masks
    scores = maps.flatten(1).amax(1) + 0.8 * torch.rand(n, generator=generator)
    for i, category in enumerate(categories):
        scale, shift = SCALE_SHIFT[category]
        maps[i] = maps[i] * scale + shift
        scores[i] = scores[i] * scale + shift
    labels = masks.flatten(1).any(1).long()
    return Synthetic(categories, scores, labels, maps, masks)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Per-category subset splitting and synthetic anomalies for multi-class datasets.

anomalib's ``random_split`` stratifies by label only, so a small category can end up with no
validation image at all, and its ``SyntheticAnomalyDataset`` drops every column it does not
know (``category``, ``class_index``). These helpers stratify by (category, label) and keep the
class columns.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anomalib.data.utils.synthetic import make_synthetic_dataset

from anomalib_hvq.data.dataset import MultiClassDataset


def split_per_category(
    dataset: MultiClassDataset,
    ratio: float,
    seed: int | None = None,
) -> tuple[MultiClassDataset, MultiClassDataset]:
    """Move a fraction of every (category, label) group into a second subset.

    Each group of ``n >= 2`` images gives ``clamp(round(ratio * n), 1, n - 1)`` images, so every
    category is represented in both subsets when it can be. Groups of one image stay put.

    Args:
        dataset: Dataset to split.
        ratio: Fraction to move, in ``(0, 1)``.
        seed: Seed of the random choice; ``None`` draws from torch's global generator.

    Returns:
        ``(rest, moved)`` subsets of ``dataset``.

    """
    if not 0 < ratio < 1:
        msg = f"Split ratio must be in (0, 1), got {ratio}."
        raise ValueError(msg)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    keep: list[int] = []
    moved: list[int] = []
    for _, group in dataset.samples.groupby(["class_index", "label_index"], sort=True):
        indices = group.index.to_numpy()
        n_moved = min(max(round(ratio * len(indices)), 1), len(indices) - 1)
        order = indices[torch.randperm(len(indices), generator=generator).numpy()]
        moved += order[:n_moved].tolist()
        keep += order[n_moved:].tolist()
    return dataset.subsample(sorted(keep)), dataset.subsample(sorted(moved))


@contextmanager
def _seeded_global_rngs(seed: int | None) -> Iterator[None]:
    """Seed numpy's and torch's global generators inside the block, then restore them.

    anomalib's synthetic generator draws from the global generators; seeding them here makes the
    synthetic subset reproducible without changing the caller's random state.
    """
    if seed is None:
        yield
        return
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def make_synthetic_split(normal: MultiClassDataset, seed: int | None = None) -> MultiClassDataset:
    """Turn half of each category's normal images into synthetic anomalies (Perlin noise).

    Uses anomalib's :func:`make_synthetic_dataset` per category. The generated files live in a
    temporary folder removed when the process exits.

    Args:
        normal: Dataset of normal images only.
        seed: Seed for reproducible anomalies.

    Returns:
        Dataset with the remaining normal images and the synthetic anomalous ones, with masks.

    """
    out_root = Path(tempfile.mkdtemp(prefix="anomalib_hvq_synthetic_"))
    atexit.register(shutil.rmtree, out_root, ignore_errors=True)
    frames = []
    with _seeded_global_rngs(seed):
        for (class_index, category), group in normal.samples.groupby(["class_index", "category"], sort=True):
            if len(group) < 2:  # nothing to turn into an anomaly while keeping a normal image
                frames.append(group)
                continue
            image_dir, mask_dir = out_root / category / "images", out_root / category / "masks"
            image_dir.mkdir(parents=True)
            mask_dir.mkdir()
            samples = make_synthetic_dataset(group.reset_index(drop=True), image_dir, mask_dir, anomalous_ratio=0.5)
            frames.append(samples.assign(category=category, class_index=class_index))
    samples = pd.concat(frames, ignore_index=True)
    samples.attrs["task"] = "segmentation"
    return MultiClassDataset(samples, augmentations=normal.augmentations)

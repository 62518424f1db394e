# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A data loader over the whole dataset even where DDP gave each process only its shard."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch.utils.data import DataLoader, DistributedSampler


def unsharded(loader: Iterable[Any]) -> Iterable[Any]:
    """``loader`` without the ``DistributedSampler`` Lightning adds under DDP, else ``loader`` itself.

    Statistics fitted once per validation (the score calibration) must be the same on every process and the
    same as in a single-process run: each process then reads every image, in dataset order, once (no padding
    repeats). Batch size, collation and workers stay the loader's.
    """
    if not isinstance(loader, DataLoader) or not isinstance(loader.sampler, DistributedSampler):
        return loader
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )

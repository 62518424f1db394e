# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Training batches whose loss is not finite are skipped, counted and reported, never stepped on.

A NaN/inf loss (a bad image, a corrupted cached feature, a diverged step) would give NaN gradients, and one
AdamW step with them makes every weight NaN for good. The models' EMA codebooks and class router guard
their own statistics (they update in the forward pass, before the loss exists); this guard keeps the
optimiser away. A skipped batch costs no backward pass and no optimiser step; returning ``None`` from
``training_step`` is Lightning's way to skip it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import distributed as dist

logger = logging.getLogger(__name__)

SHOWN_IMAGES = 4


class NonFiniteBatches:
    """Count training batches skipped for a non-finite loss; stop when a whole epoch was skipped.

    The check costs one host sync of a scalar per training step (the progress bar reads the loss anyway).
    """

    def __init__(self) -> None:
        self.total = 0
        self.epoch_skipped = 0
        self.epoch_batches = 0

    def start_epoch(self) -> None:
        """Reset the per-epoch counts."""
        self.epoch_skipped = self.epoch_batches = 0

    def skip(self, loss: torch.Tensor, image_paths: Sequence[str] | None = None) -> bool:
        """Whether to skip the batch of ``loss`` (scalar); warns with the batch's images and the count so far.

        Under DDP every process skips when any one's loss is non-finite, so that they stay in step.
        """
        self.epoch_batches += 1
        finite = torch.isfinite(loss.detach()).all().to(torch.int32)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if bool(finite):
            return False
        self.total += 1
        self.epoch_skipped += 1
        paths = list(image_paths or [])
        shown = ", ".join(map(str, paths[:SHOWN_IMAGES])) + (", ..." if len(paths) > SHOWN_IMAGES else "")
        logger.warning(
            "Skipped a training batch with a non-finite loss (%s): no optimiser step, no codebook or router update. "
            "%d batch(es) skipped so far. Its images: %s. Check them (NaN/inf pixels, a damaged feature cache), "
            "or lower the learning rate if training diverged.",
            float(loss.detach().float()),
            self.total,
            shown or "unknown",
        )
        return True

    def end_epoch(self) -> None:
        """Raise if every batch of the epoch was skipped: training is no longer learning anything."""
        if self.epoch_batches and self.epoch_skipped == self.epoch_batches:
            msg = (
                f"Every training batch of this epoch ({self.epoch_batches}) had a non-finite loss, so none was "
                "trained on. The training data or cached features hold NaN/inf values, or training diverged: check "
                "the images, delete the feature cache folder, or lower the learning rate."
            )
            raise FloatingPointError(msg)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""One plain progress line per training epoch, for output that is not a terminal (CI, ``nohup``, a log file).

Lightning's progress bar draws nothing there, so a long training printed nothing until its end. The line says
the epoch, the mean training loss over the epoch, the training throughput and the time left, e.g.
``epoch 3/30  loss 0.4312  41.7 images/s  ETA 12m05s``.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def format_duration(seconds: float) -> str:
    """``3h02m``, ``12m05s`` or ``42s``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _batch_size(batch: Any) -> int:
    images = getattr(batch, "image", None)
    if isinstance(images, torch.Tensor):
        return int(images.shape[0])
    return int(getattr(batch, "batch_size", 0) or len(batch))


def _loss(outputs: Any) -> float | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else None


class EpochProgressLine(Callback):
    """Print ``epoch i/n  loss L  R images/s  ETA T`` at the end of each training epoch.

    Args:
        stream: Where to print; default ``sys.stdout`` at print time.

    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self.fit_start = self.epoch_start = 0.0
        self.first_epoch = 0
        self.images = 0
        self.loss_sum = 0.0
        self.loss_images = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the clock for the time left."""
        del pl_module
        self.fit_start = time.perf_counter()
        self.first_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Reset the epoch's counts."""
        del trainer, pl_module
        self.epoch_start = time.perf_counter()
        self.images = self.loss_images = 0
        self.loss_sum = 0.0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Count the batch's images and add its loss, weighted by its size."""
        del trainer, pl_module, batch_idx
        size = _batch_size(batch)
        self.images += size
        loss = _loss(outputs)
        if loss is not None:
            self.loss_sum += loss * size
            self.loss_images += size

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Print the epoch's line."""
        del pl_module
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        now = time.perf_counter()
        epoch, total = trainer.current_epoch + 1, trainer.max_epochs
        parts = [f"epoch {epoch}/{total}" if total and total > 0 else f"epoch {epoch}"]
        if self.loss_images:
            parts.append(f"loss {self.loss_sum / self.loss_images:.4f}")
        parts.append(f"{self.images / max(now - self.epoch_start, 1e-9):.1f} images/s")
        done = epoch - self.first_epoch
        if total and total > 0 and done > 0:
            parts.append(f"ETA {format_duration((now - self.fit_start) / done * max(total - epoch, 0))}")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)

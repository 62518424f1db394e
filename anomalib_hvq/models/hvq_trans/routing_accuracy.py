# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Routing accuracy: how often the label-free router picks each image's true class."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class RoutingAccuracy(Metric):
    """Confusion counts of routed vs true classes, with overall and per-class accuracy.

    Args:
        num_classes: Number of classes K.

    """

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.add_state("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, routed: torch.Tensor, target: torch.Tensor) -> None:
        """Count routed classes ``(B,)`` against true classes ``(B,)``."""
        num_classes = self.confusion.shape[0]
        flat = target.long() * num_classes + routed.long()
        self.confusion += torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)

    def compute(self) -> torch.Tensor:
        """Fraction of images routed to their true class (NaN before any update)."""
        total = self.confusion.sum()
        return self.confusion.diagonal().sum() / total if total > 0 else torch.tensor(float("nan"))

    def per_class(self) -> torch.Tensor:
        """Accuracy per true class ``(K,)``; NaN for classes without images."""
        totals = self.confusion.sum(1).float()
        return torch.where(totals > 0, self.confusion.diagonal() / totals.clamp(min=1), float("nan"))

    def logged(self, class_names: list[str]) -> dict[str, torch.Tensor]:
        """``routing_accuracy`` and ``routing_accuracy/<class>`` for each class that had images."""
        per_class = zip(class_names, self.per_class(), strict=True)
        return {"routing_accuracy": self.compute()} | {
            f"routing_accuracy/{name}": accuracy for name, accuracy in per_class if not torch.isnan(accuracy)
        }

    def table(self, class_names: list[str]) -> str:
        """Markdown confusion table: rows are true classes, columns routed classes."""
        lines = [
            "| true \\ routed | " + " | ".join(class_names) + " | accuracy |",
            "|---" * (len(class_names) + 2) + "|",
        ]
        for name, row, accuracy in zip(class_names, self.confusion.tolist(), self.per_class().tolist(), strict=True):
            lines.append(f"| {name} | " + " | ".join(map(str, row)) + f" | {100 * accuracy:.1f} |")
        return "\n".join(lines) + "\n"

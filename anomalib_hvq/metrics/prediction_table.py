# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Each predicted image's score and label: printed, and written as ``predictions.csv`` and ``predictions.json``.

anomalib's ``predict`` only writes overlay images; the scores a user asked for stay in memory. The
callback runs after the post-processor, so the score is anomalib's normalised one in [0, 1] (0.5 is the
threshold) and the label is the one exported models give.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

PREDICTIONS_CSV = "predictions.csv"
PREDICTIONS_JSON = "predictions.json"


class PredictionTable(Callback):
    """Collect ``image_path``, ``pred_score`` and ``pred_label`` of every predicted image; print and save them.

    Args:
        print_rows: Print one line per image (``score  label  path``) at the end of ``predict``.

    """

    def __init__(self, print_rows: bool = True) -> None:
        self.print_rows = print_rows
        self.rows: list[dict[str, Any]] = []

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start an empty table."""
        del trainer, pl_module
        self.rows = []

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:
        """Add the batch's images (``pred_score`` (B,), ``pred_label`` (B,), ``image_path`` B strings)."""
        del trainer, pl_module, args
        scores = getattr(outputs, "pred_score", None)
        if scores is None:
            return
        scores = torch.as_tensor(scores).detach().float().reshape(-1).cpu().tolist()
        labels = getattr(outputs, "pred_label", None)
        labels = [None] * len(scores) if labels is None else torch.as_tensor(labels).reshape(-1).cpu().tolist()
        paths = getattr(outputs, "image_path", None) or [""] * len(scores)
        for path, score, label in zip(paths, scores, labels, strict=True):
            self.rows.append(
                {
                    "image_path": str(path),
                    "score": round(score, 6),
                    "label": None if label is None else ("anomalous" if label else "normal"),
                }
            )

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Print the table and write it into the run's folder (``trainer.default_root_dir``)."""
        del pl_module
        if not self.rows or not trainer.is_global_zero:
            return
        folder = Path(trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / PREDICTIONS_CSV).open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=["image_path", "score", "label"])
            writer.writeheader()
            writer.writerows(self.rows)
        (folder / PREDICTIONS_JSON).write_text(json.dumps(self.rows, indent=1))
        if self.print_rows:
            lines = [f"{row['score']:.4f}  {row['label'] or '-':9s}  {row['image_path']}" for row in self.rows]
            print("\n".join(["score   label      image", *lines]))
        print(f"Predictions of {len(self.rows)} images written to {folder / PREDICTIONS_CSV} and .json")

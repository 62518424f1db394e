# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""What each term of HVQ-Trans's anomaly score contributes: reconstruction error, OT score, their weighted sums.

The map is ``error + ot_weight * OT`` per token (``ot_weight`` 80 in the paper's code). This script tests one
trained checkpoint once, keeping the two terms apart, and scores the test set again with each weighting:
reconstruction only, OT only, and ``error + w * OT`` for the weights given. It also reports two weights read off
the *validation* images (normal only, no labels): the one that makes the two terms equally large (ratio of their
mean token values) and the one that makes them equally spread (ratio of their standard deviations). Nothing here
selects on the test set; the table only reports it. Routing is the model's own (label-free by default), the
image score the model's (max of the average-pooled map). For a model with ``calibrate_score=True`` the error term
is its calibrated one and its own fitted weight gets a row; ``--recalibrate`` first fits that calibration again on
the validation set with the installed code (e.g. to score a checkpoint calibrated by an older form the current way).

Example (the model README's diagnosis):
    python benchmarks/score_terms.py --ckpt results/HVQTrans/textures/all/latest/weights/lightning/model.ckpt \\
        --root ./datasets/textures --weights 20 80 320
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch

from anomalib_hvq import HVQTrans
from anomalib_hvq.data import Textures
from anomalib_hvq.metrics.functional import MEAN_ROW, per_category_metrics
from anomalib_hvq.models.components.reconstruction_score import upsample_and_score
from anomalib_hvq.models.hvq_trans.anomaly_map import AnomalyMapGenerator

SHOWN = {"image_AUROC": "image AUROC", "pixel_AUROC": "pixel AUROC", "AUPRO": "AU-PRO"}


class TermRecorder(AnomalyMapGenerator):
    """The model's anomaly-map generator that also keeps both terms per token, ``(B, 1, h, w)`` each.

    With a calibrated model (``calibrate_score=True``) the error is the calibrated one and the OT term is kept
    unweighted (less its position offset), so ``error + w * OT`` re-weights exactly what the model sums.
    """

    def __init__(self, original: AnomalyMapGenerator) -> None:
        super().__init__(original.ot_weight, original.pool_size)
        self.calibration = original.calibration
        self.errors: list[torch.Tensor] = []
        self.ots: list[torch.Tensor] = []

    def terms(self, *args: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Record the error and the unweighted OT score (third argument), then return the model's terms."""
        error, weighted_ot = super().terms(*args)
        ot = args[2].view_as(error).float()
        if self.calibration is not None:
            ot = ot - self.calibration.ot_offset
        self.errors.append(error.cpu())
        self.ots.append(ot.cpu())
        return error, weighted_ot

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The recorded ``(error, ot)`` terms ``(N, 1, h, w)`` since the last call."""
        terms = torch.cat(self.errors), torch.cat(self.ots)
        self.errors, self.ots = [], []
        return terms


def batches(model: HVQTrans, loader: torch.utils.data.DataLoader) -> Iterator[tuple[torch.Tensor, object]]:
    """Pre-processed images ``(B, 3, H, W)`` with their batch, as in testing."""
    for batch in loader:
        yield model.pre_processor.transform(batch.image), batch


@torch.no_grad()
def record(model: HVQTrans, loader: torch.utils.data.DataLoader) -> dict[str, object]:
    """Both terms, labels, masks and categories of every image in ``loader``."""
    recorder = model.model.anomaly_map
    labels, masks, categories, size = [], [], [], None
    for images, batch in batches(model, loader):
        model.model.predict(images)
        size = tuple(images.shape[-2:])
        labels.append(batch.gt_label)
        masks.append(batch.gt_mask if batch.gt_mask is not None else torch.zeros(len(images), *size))
        categories += list(batch.category)
    error, ot = recorder.take()
    return {
        "error": error,
        "ot": ot,
        "labels": torch.cat(labels),
        "masks": torch.cat(masks).float(),
        "categories": categories,
        "size": size,
    }


def score(terms: dict[str, object], error_weight: float, ot_weight: float, pool_size: int) -> pd.DataFrame:
    """Per-category metrics of the map ``error_weight * error + ot_weight * OT``."""
    token_scores = error_weight * terms["error"] + ot_weight * terms["ot"]
    maps, scores = upsample_and_score(token_scores, terms["size"], pool_size)
    return per_category_metrics(terms["categories"], scores, terms["labels"], maps[:, 0], terms["masks"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, required=True, help="a trained HVQTrans checkpoint")
    parser.add_argument("--root", default="./datasets/textures", help="Textures demo data folder")
    parser.add_argument("--categories", nargs="+", default=None, help="subset of the categories (default: all)")
    parser.add_argument("--weights", type=float, nargs="+", default=[20.0, 80.0, 320.0], help="OT weights to try")
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="fit the model's score calibration again on the validation set first (calibrate_score=True models)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--output", type=Path, default=Path("results/score_terms"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    """Record the terms on the validation and test sets, score each weighting, write ``score_terms.md``."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = HVQTrans.load_from_checkpoint(args.ckpt).eval()
    data = Textures(root=args.root, categories=args.categories, eval_batch_size=args.batch_size, num_workers=0)
    data.prepare_data()
    data.setup()
    if args.recalibrate:
        with torch.no_grad():
            model.calibrate_score(data.val_dataloader())
    model.model.anomaly_map = TermRecorder(model.model.anomaly_map)
    pool_size = model.model.anomaly_map.pool_size
    validation = record(model, data.val_dataloader())
    test = record(model, data.test_dataloader())
    matched = float(validation["error"].mean() / validation["ot"].mean())
    spread = float(validation["error"].std() / validation["ot"].std())
    calibration = model.model.anomaly_map.calibration
    error_kind = "||rec - feat||" if calibration is None else "calibrated (Mahalanobis residual norm)"
    if args.recalibrate:
        error_kind += ", calibration re-fitted on the validation set"
    rows = {"reconstruction only": (1.0, 0.0), "OT only": (0.0, 1.0)}
    if calibration is not None:
        rows[f"error + {float(calibration.ot_weight):.1f} x OT (the model's calibrated map)"] = (
            1.0,
            float(calibration.ot_weight),
        )
    paper = " (paper)" if calibration is None else ""  # the paper's weight belongs to the paper's error term
    rows |= {f"error + {w:g} x OT" + (paper if w == 80 else ""): (1.0, w) for w in args.weights}
    rows[f"error + {matched:.1f} x OT (equal means on validation)"] = (1.0, matched)
    rows[f"error + {spread:.1f} x OT (equal spreads on validation)"] = (1.0, spread)
    lines = [
        f"Anomaly-score terms of `{args.ckpt}` on `{args.root}` (test set, model's routing; "
        f"mean of the per-category values, %). Error term: {error_kind}. Validation (normal) token means: "
        f"error {validation['error'].mean():.3f}, OT {validation['ot'].mean():.5f}.",
        "",
        "| score | " + " | ".join(SHOWN.values()) + " |",
        "|---|" + "---|" * len(SHOWN),
    ]
    for name, (error_weight, ot_weight) in rows.items():
        mean = score(test, error_weight, ot_weight, pool_size).loc[MEAN_ROW]
        lines.append(f"| {name} | " + " | ".join(f"{100 * mean[key]:.1f}" for key in SHOWN) + " |")
    report = "\n".join(lines) + "\n"
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "score_terms.md").write_text(report)
    print(report)
    return report


if __name__ == "__main__":
    main()

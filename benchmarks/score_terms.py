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
Such a model also gets two control rows: the same calibration fitted and applied with no reconstruction at all
(``rec = 0``, so the error is the Mahalanobis norm of the backbone features per class), with the model's OT score
and without it. They tell how much of the calibrated score's detection the trained reconstruction provides.

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
from anomalib_hvq.models.hvq_trans.score_calibration import ScoreCalibration

SHOWN = {"image_AUROC": "image AUROC", "pixel_AUROC": "pixel AUROC", "AUPRO": "AU-PRO"}


class TermRecorder(AnomalyMapGenerator):
    """The model's anomaly-map generator that also keeps both terms per token, ``(B, 1, h, w)`` each.

    With a calibrated model (``calibrate_score=True``) the error is the calibrated one and the OT term is kept
    unweighted (less its position offset), so ``error + w * OT`` re-weights exactly what the model sums.
    """

    def __init__(self, original: AnomalyMapGenerator) -> None:
        super().__init__(original.ot_weight, original.pool_size)
        self.calibration = original.calibration
        self.recorded: dict[str, list[torch.Tensor]] = {}

    def terms(self, *args: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Record both terms, the raw OT score and, when calibrated, the features and classes; return the terms."""
        error, weighted_ot = super().terms(*args)
        _, features, raw_ot, class_index = args
        raw_ot = raw_ot.view_as(error).float()
        ot = raw_ot if self.calibration is None else raw_ot - self.calibration.ot_offset
        kept = {"error": error, "ot": ot}
        if self.calibration is not None:  # for the no-reconstruction control
            kept |= {"features": features.float(), "raw_ot": raw_ot, "classes": class_index}
        for name, value in kept.items():
            self.recorded.setdefault(name, []).append(value.cpu())
        return error, weighted_ot

    def take(self) -> dict[str, torch.Tensor]:
        """The recorded values since the last call: ``error``, ``ot`` (and ``features``, ``raw_ot``, ``classes``)."""
        taken = {name: torch.cat(values) for name, values in self.recorded.items()}
        self.recorded = {}
        return taken


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
    return recorder.take() | {
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


def without_reconstruction(
    validation: dict[str, object], test: dict[str, object], calibration: ScoreCalibration
) -> tuple[dict[str, object], float]:
    """The control: the test terms with ``rec = 0``, calibrated afresh on the validation features; and its OT weight.

    The calibration is fitted as the model's is, on the validation images with the classes the model scored them
    with, on ``0 - feat`` instead of ``rec - feat``; the OT score is the model's (its prototypes are trained).
    """
    control = ScoreCalibration(*calibration.residual_mean.shape, 1.0, grid=tuple(calibration.ot_offset.shape))
    control.fit(-validation["features"], validation["raw_ot"], validation["classes"])
    terms = {"error": control.error(-test["features"], test["classes"]), "ot": test["raw_ot"] - control.ot_offset}
    return test | terms, float(control.ot_weight)


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
    scored = [(name, test, weights) for name, weights in rows.items()]
    if calibration is not None:
        control, weight = without_reconstruction(validation, test, calibration)
        scored += [
            (
                f"no reconstruction (rec = 0): error + {weight:.1f} x OT, calibrated alike (control)",
                control,
                (1.0, weight),
            ),
            ("no reconstruction (rec = 0): error only, calibrated alike (control)", control, (1.0, 0.0)),
        ]
    for name, terms, (error_weight, ot_weight) in scored:
        mean = score(terms, error_weight, ot_weight, pool_size).loc[MEAN_ROW]
        lines.append(f"| {name} | " + " | ".join(f"{100 * mean[key]:.1f}" for key in SHOWN) + " |")
    report = "\n".join(lines) + "\n"
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "score_terms.md").write_text(report)
    print(report)
    return report


if __name__ == "__main__":
    main()

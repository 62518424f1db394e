# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Pure per-category metric computation for the unified (multi-class) setting.

Papers on unified anomaly detection compute every metric on each category's test set alone and
report the unweighted mean over categories. These functions do exactly that on CPU tensors; the
:class:`~anomalib_hvq.metrics.per_category.PerCategoryMetrics` callback only collects the data.

All ranking metrics are exact (every distinct score is a threshold, no binning):

* AUROC: trapezoidal area under ``torchmetrics``' exact ``binary_roc`` (as ``binary_auroc``).
* AP: step-wise area under the precision-recall curve derived from the same ROC counts, the
  definition of ``sklearn.metrics.average_precision_score`` and anomalib's ``AUPR``.
* F1-max: maximum F1 over the same curve, as anomalib's ``F1Max``.
* AU-PRO: anomalib's ``AUPRO`` (FPR limit 0.3 by default, area normalised by the limit).

A metric is ``NaN`` when it is undefined for a category, i.e. its targets hold a single class
(no anomalous images, or no anomalous pixels); the ``mean`` row skips those categories.
"""

from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import pandas as pd
import torch
from anomalib.metrics import AUPRO
from torch.nn import functional as F
from torchmetrics.functional.classification import binary_roc

IMAGE_METRICS: tuple[str, ...] = ("image_AUROC", "image_AP", "image_F1Max")
PIXEL_METRICS: tuple[str, ...] = ("pixel_AUROC", "pixel_AP", "pixel_F1Max", "AUPRO")
METRIC_NAMES: tuple[str, ...] = IMAGE_METRICS + PIXEL_METRICS
MEAN_ROW = "mean"

_NAN = float("nan")


def _to_unit_interval(preds: torch.Tensor) -> torch.Tensor:
    """Rescale scores to ``[0, 1]`` by min-max in float64, keeping their order and ties.

    torchmetrics treats scores outside ``[0, 1]`` as logits and applies a sigmoid, which saturates
    to exactly 1.0 in float32 for scores above ~17 and would turn distinct raw scores into ties.
    An affine map in float64 keeps every distinct float32/float16 score distinct.

    Args:
        preds: Scores of any shape and real range.

    Returns:
        Float64 tensor of the same shape with values in ``[0, 1]``.

    """
    preds = preds.double()
    low, high = preds.min(), preds.max()
    if high > low:
        return (preds - low) / (high - low)
    return torch.zeros_like(preds)


def _has_both_classes(target: torch.Tensor) -> bool:
    """Whether a binary target tensor holds at least one positive and one negative."""
    num_pos = int(target.sum())
    return 0 < num_pos < target.numel()


def roc_curve(preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exact ROC curve of scores against binary targets.

    Args:
        preds: Scores, any shape (flattened); higher means more anomalous.
        target: Binary targets (bool or 0/1) with as many elements as ``preds``.

    Returns:
        ``(fpr, tpr)``, float tensors from ``(0, 0)`` to ``(1, 1)`` with one point per distinct
        score, or ``None`` when ``target`` holds a single class (no curve is defined).

    """
    preds, target = preds.flatten(), target.flatten().bool()
    if not _has_both_classes(target):
        return None
    fpr, tpr, _ = binary_roc(_to_unit_interval(preds), target.long(), validate_args=False)
    return fpr, tpr


def ranking_metrics(preds: torch.Tensor, target: torch.Tensor) -> tuple[float, float, float]:
    """Exact AUROC, average precision and F1-max of scores against binary targets.

    Args:
        preds: Scores, any shape (flattened); higher means more anomalous.
        target: Binary targets (bool or 0/1) with as many elements as ``preds``.

    Returns:
        ``(auroc, ap, f1_max)`` as floats in ``[0, 1]``; all ``NaN`` when ``target`` holds a
        single class, for which none of them is defined.

    """
    # One exact ROC (one sort of all scores) gives the confusion counts at every distinct threshold;
    # the precision-recall curve follows from them, so AP and F1-max need no second sort.
    curve = roc_curve(preds, target)
    if curve is None:
        return _NAN, _NAN, _NAN
    fpr, tpr = curve
    auroc = torch.trapezoid(tpr, fpr)
    num_pos = target.bool().sum()
    true_pos, false_pos = tpr * num_pos, fpr * (target.numel() - num_pos)
    precision = true_pos[1:] / (true_pos[1:] + false_pos[1:])  # defined from the 2nd point on
    # Step-wise AP: precision at each threshold times the recall gained there (sklearn, anomalib).
    average_precision = torch.sum(torch.diff(tpr) * precision)
    f1 = 2 * precision * tpr[1:] / (precision + tpr[1:]).clamp_min(1e-12)
    return float(auroc), float(average_precision), float(f1.max())


def aupro(maps: torch.Tensor, masks: torch.Tensor, fpr_limit: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, normalised to ``[0, 1]``.

    Args:
        maps: Anomaly maps, shape ``(N, H, W)``.
        masks: Ground-truth masks, shape ``(N, H, W)``, bool or 0/1.
        fpr_limit: Upper limit of the false-positive rate integrated over.

    Returns:
        The AU-PRO, or ``NaN`` when the masks hold no anomalous or no normal pixel.

    """
    if not _has_both_classes(masks):
        return _NAN
    metric = AUPRO(fields=["anomaly_map", "gt_mask"], fpr_limit=fpr_limit)
    # AUPRO only sorts the maps (no sigmoid), so the raw float32 values are used as they are.
    metric.update(SimpleNamespace(anomaly_map=maps.float(), gt_mask=masks.float()))
    return float(metric.compute())


def resize_masks(masks: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize masks to ``size`` with nearest-neighbour interpolation (no-op if already that size).

    Args:
        masks: Masks, shape ``(N, H, W)``.
        size: Target ``(H', W')``, normally the anomaly map's spatial size.

    Returns:
        Bool masks of shape ``(N, H', W')``.

    """
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks.bool()
    resized = F.interpolate(masks[:, None].float(), size=tuple(size), mode="nearest")
    return resized[:, 0] > 0.5


def category_metrics(
    scores: torch.Tensor | None,
    labels: torch.Tensor | None,
    maps: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    fpr_limit: float = 0.3,
) -> dict[str, float]:
    """All seven metrics for the test samples of ONE category.

    Args:
        scores: Image scores, shape ``(N,)``; ``None`` makes the image metrics ``NaN``.
        labels: Image labels (1 = anomalous), shape ``(N,)``.
        maps: Anomaly maps, shape ``(N, H, W)``; ``None`` makes the pixel metrics ``NaN``.
        masks: Ground-truth masks, shape ``(N, H, W)`` (resized to the maps if needed).
        fpr_limit: FPR limit of the AU-PRO.

    Returns:
        Mapping from each name in :data:`METRIC_NAMES` to its value in ``[0, 1]`` or ``NaN``.

    """
    row = dict.fromkeys(METRIC_NAMES, _NAN)
    if scores is not None and labels is not None:
        row.update(zip(IMAGE_METRICS, ranking_metrics(scores, labels), strict=True))
    if maps is not None and masks is not None:
        masks = resize_masks(masks, maps.shape[-2:])
        row.update(zip(PIXEL_METRICS[:3], ranking_metrics(maps, masks), strict=True))
        row["AUPRO"] = aupro(maps, masks, fpr_limit)
    return row


def metrics_table(rows: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Stack per-category rows and append the ``mean`` row (mean over the defined values).

    Args:
        rows: Category name -> metric name -> value, in the row order wanted.

    Returns:
        DataFrame indexed by category (plus ``mean``) with the columns :data:`METRIC_NAMES`.

    Raises:
        ValueError: If a category is called ``mean``, which would collide with the mean row.

    """
    if MEAN_ROW in rows:
        msg = f"A category may not be named {MEAN_ROW!r}: it collides with the mean row."
        raise ValueError(msg)
    table = pd.DataFrame(
        [[float(row.get(name, _NAN)) for name in METRIC_NAMES] for row in rows.values()],
        index=pd.Index(list(rows), name="category", dtype=object),
        columns=list(METRIC_NAMES),
        dtype=float,
    )
    # skipna: categories where a metric is undefined (NaN) do not count towards its mean.
    table.loc[MEAN_ROW] = table.mean(axis=0, skipna=True)
    return table


def per_category_metrics(
    categories: Sequence[str],
    scores: torch.Tensor,
    labels: torch.Tensor,
    maps: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    fpr_limit: float = 0.3,
) -> pd.DataFrame:
    """Per-category metrics and their mean for pooled test predictions.

    Args:
        categories: Category of each sample, length ``N``.
        scores: Image scores, shape ``(N,)``.
        labels: Image labels, shape ``(N,)``.
        maps: Anomaly maps, shape ``(N, H, W)``, or ``None``.
        masks: Ground-truth masks, shape ``(N, H, W)``, or ``None``.
        fpr_limit: FPR limit of the AU-PRO.

    Returns:
        The :func:`metrics_table` of the categories in sorted order.

    """
    rows = {}
    for name in sorted(set(categories)):
        index = torch.tensor([i for i, category in enumerate(categories) if category == name])
        rows[name] = category_metrics(
            scores[index],
            labels[index],
            None if maps is None else maps[index],
            None if masks is None else masks[index],
            fpr_limit,
        )
    return metrics_table(rows)

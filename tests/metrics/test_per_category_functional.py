# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Pure per-category metric functions against independent references (sklearn, numpy, by hand)."""

import math

import numpy as np
import pytest
import torch
from anomalib.post_processing import PostProcessor
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from anomalib_hvq.metrics import METRIC_NAMES, category_metrics, metrics_table, per_category_metrics
from anomalib_hvq.metrics.functional import ranking_metrics, resize_masks
from anomalib_hvq.metrics.report import format_markdown, undefined_note

from .synthetic import CATEGORIES, Synthetic, make_synthetic


def reference_f1_max(target: np.ndarray, preds: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(target, preds)
    return float(np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12)))


def reference_aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Brute-force AU-PRO: every distinct map value is a threshold, regions are 8-connected."""
    regions = []
    for image_map, mask in zip(maps, masks, strict=True):
        labelled, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [image_map[labelled == k] for k in range(1, count + 1)]
    normal = maps[~masks]
    thresholds = np.unique(maps)[::-1]
    fpr = np.array([0.0, *[(normal >= t).mean() for t in thresholds]])
    pro = np.array([0.0, *[np.mean([(r >= t).mean() for r in regions]) for t in thresholds]])
    last = np.searchsorted(fpr, fpr_limit, side="right") - 1  # last point with fpr <= limit
    x, y = list(fpr[: last + 1]), list(pro[: last + 1])
    if x[-1] < fpr_limit:
        x.append(fpr_limit)
        y.append(np.interp(fpr_limit, fpr[last : last + 2], pro[last : last + 2]))
    return float(np.trapezoid(y, x) / fpr_limit)


def reference_row(data: Synthetic, category: str) -> dict[str, float]:
    """All seven metrics of one category, computed with sklearn / numpy on that category alone."""
    pick = np.array([c == category for c in data.categories])
    scores, labels = data.scores.numpy()[pick].astype(np.float64), data.labels.numpy()[pick]
    maps, masks = data.maps.numpy()[pick].astype(np.float64), data.masks.numpy()[pick]
    pixels, pixel_labels = maps.ravel(), masks.ravel()
    return {
        "image_AUROC": roc_auc_score(labels, scores),
        "image_AP": average_precision_score(labels, scores),
        "image_F1Max": reference_f1_max(labels, scores),
        "pixel_AUROC": roc_auc_score(pixel_labels, pixels),
        "pixel_AP": average_precision_score(pixel_labels, pixels),
        "pixel_F1Max": reference_f1_max(pixel_labels, pixels),
        "AUPRO": reference_aupro(maps, masks),
    }


def compute(data: Synthetic):
    return per_category_metrics(data.categories, data.scores, data.labels, data.maps, data.masks)


def test_each_row_equals_metrics_of_that_category_alone(synthetic: Synthetic) -> None:
    table = compute(synthetic)
    assert list(table.index) == [*CATEGORIES, "mean"]
    assert list(table.columns) == list(METRIC_NAMES)
    for category in CATEGORIES:
        expected = reference_row(synthetic, category)
        for metric in METRIC_NAMES:
            assert table.loc[category, metric] == pytest.approx(expected[metric], abs=1e-6), (
                category,
                metric,
            )
    # The synthetic data are informative but not trivially separable, so the check is not vacuous.
    assert 0.5 < table.loc["mean", "image_AUROC"] < 1.0
    assert 0.5 < table.loc["mean", "pixel_AUROC"] < 1.0
    assert 0.0 < table.loc["mean", "AUPRO"] < 1.0


def test_mean_row_is_mean_of_rows(synthetic: Synthetic) -> None:
    table = compute(synthetic)
    for metric in METRIC_NAMES:
        assert table.loc["mean", metric] == pytest.approx(table.loc[list(CATEGORIES), metric].mean())


def test_category_without_anomalies_is_nan_and_left_out_of_the_mean() -> None:
    data = make_synthetic(normal_only=("cable",))
    table = compute(data)
    assert table.loc["cable"].isna().all()
    assert table.drop(index="cable").notna().all().all()
    defined = ["bottle", "screw"]
    for metric in METRIC_NAMES:
        assert table.loc["mean", metric] == pytest.approx(table.loc[defined, metric].mean())
    assert "cable" in undefined_note(table)


def test_anomalous_images_without_anomalous_pixels_only_make_pixel_metrics_nan() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    row = category_metrics(torch.tensor([0.1, 0.4, 0.3, 0.9]), labels, torch.rand(4, 8, 8), torch.zeros(4, 8, 8))
    assert row["image_AUROC"] == pytest.approx(0.75)
    table = metrics_table({"a": row, "b": dict.fromkeys(METRIC_NAMES, 0.5)})
    assert undefined_note(table).endswith("pixel_AUROC, pixel_AP, pixel_F1Max, AUPRO: a.")
    assert all(math.isnan(row[name]) for name in ("pixel_AUROC", "pixel_AP", "pixel_F1Max", "AUPRO"))


def test_missing_maps_give_nan_pixel_metrics() -> None:
    row = category_metrics(torch.tensor([0.1, 0.9]), torch.tensor([0, 1]))
    assert row["image_AUROC"] == 1.0
    assert math.isnan(row["pixel_AUROC"]) and math.isnan(row["AUPRO"])


def test_large_raw_scores_are_not_squashed_into_ties() -> None:
    # torchmetrics would read these as logits: sigmoid(>17) == 1.0 in float32, i.e. all tied.
    scores = torch.tensor([100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    labels = torch.tensor([0, 1, 0, 0, 1, 1])
    auroc, ap, f1_max = ranking_metrics(scores, labels)
    assert auroc == pytest.approx(roc_auc_score(labels, scores))
    assert ap == pytest.approx(average_precision_score(labels, scores))
    assert f1_max == pytest.approx(reference_f1_max(labels.numpy(), scores.numpy()))
    assert auroc != pytest.approx(0.5)


def test_tied_scores_match_sklearn() -> None:
    # Few distinct values and many samples: ties and large counts are where a derived PR curve slips.
    generator = torch.Generator().manual_seed(5)
    labels = (torch.rand(200_000, generator=generator) < 0.1).long()
    scores = torch.randint(0, 20, (200_000,), generator=generator).float() + 3 * labels
    auroc, ap, f1_max = ranking_metrics(scores, labels)
    assert auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert ap == pytest.approx(average_precision_score(labels, scores), abs=1e-6)
    assert f1_max == pytest.approx(reference_f1_max(labels.numpy(), scores.numpy()), abs=1e-6)


def test_pooled_and_per_category_image_auroc_differ() -> None:
    # Each category is perfectly separated, but on its own score scale: pooling ranks cable's normal
    # images (10, 11) above bottle's anomalous ones (0.3, 0.4), so 4 of 16 pairs are misordered.
    categories = ["bottle"] * 4 + ["cable"] * 4
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 10.0, 11.0, 12.0, 13.0])
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    table = per_category_metrics(categories, scores, labels)
    assert table["image_AUROC"].tolist() == [1.0, 1.0, 1.0]
    assert roc_auc_score(labels, scores) == pytest.approx(0.75)
    assert ranking_metrics(scores, labels)[0] == pytest.approx(0.75)  # our pooled value agrees


def test_min_max_normalisation_clamping_creates_ties_that_raw_scores_avoid(synthetic: Synthetic) -> None:
    # anomalib's post-processor normalises with statistics of the pooled validation set and clamps
    # to [0, 1]; fitted on bottle's range, all of cable's scores (around 10) clamp to 1.0.
    bottle = torch.tensor([c == "bottle" for c in synthetic.categories])
    low, high = synthetic.scores[bottle].min(), synthetic.scores[bottle].max()
    normalised = PostProcessor._normalize(synthetic.scores, low, high, (low + high) / 2)
    raw = compute(synthetic)
    clamped = per_category_metrics(synthetic.categories, normalised, synthetic.labels)
    assert clamped.loc["cable", "image_AUROC"] == pytest.approx(0.5)
    assert raw.loc["cable", "image_AUROC"] > 0.6
    assert clamped.loc["bottle", "image_AUROC"] == pytest.approx(raw.loc["bottle", "image_AUROC"])


def test_resize_masks_uses_nearest_neighbour() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[1, 4:, 4:] = True
    resized = resize_masks(masks, (4, 4))
    assert resized.shape == (2, 4, 4) and resized.dtype == torch.bool
    assert resized[1].sum() == 4 and resized[1, 2:, 2:].all() and not resized[0].any()
    assert resize_masks(masks, (8, 8)).equal(masks)


def test_category_named_mean_is_rejected() -> None:
    with pytest.raises(ValueError, match="mean"):
        metrics_table({"mean": dict.fromkeys(METRIC_NAMES, 0.5)})


def test_markdown_shows_percent_with_one_decimal_and_na() -> None:
    table = metrics_table({"a": {"image_AUROC": 0.98765}, "b": {"image_AUROC": 0.5, "AUPRO": 0.25}})
    markdown = format_markdown(table, ["note"])
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| :")]
    assert len(rows) == 4  # header + a + b + mean
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in rows}
    assert cells["a"][0] == "98.8" and cells["b"][0] == "50.0" and cells["**mean**"][0] == "74.4"
    assert cells["a"][-1] == "n/a" and cells["**mean**"][-1] == "25.0"
    assert markdown.rstrip().endswith("- note")

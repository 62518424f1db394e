# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Per-category evaluation for the unified (multi-class) setting; the table of predicted scores."""

from anomalib_hvq.metrics.functional import (
    IMAGE_METRICS,
    METRIC_NAMES,
    PIXEL_METRICS,
    category_metrics,
    metrics_table,
    per_category_metrics,
)
from anomalib_hvq.metrics.per_category import PerCategoryMetrics
from anomalib_hvq.metrics.prediction_table import PredictionTable

__all__ = [
    "IMAGE_METRICS",
    "METRIC_NAMES",
    "PIXEL_METRICS",
    "PerCategoryMetrics",
    "PredictionTable",
    "category_metrics",
    "metrics_table",
    "per_category_metrics",
]

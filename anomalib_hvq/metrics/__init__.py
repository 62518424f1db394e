# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Per-category evaluation for the unified (multi-class) setting."""

from anomalib_hvq.metrics.functional import (
    IMAGE_METRICS,
    METRIC_NAMES,
    PIXEL_METRICS,
    category_metrics,
    metrics_table,
    per_category_metrics,
)
from anomalib_hvq.metrics.per_category import PerCategoryMetrics

__all__ = [
    "IMAGE_METRICS",
    "METRIC_NAMES",
    "PIXEL_METRICS",
    "PerCategoryMetrics",
    "category_metrics",
    "metrics_table",
    "per_category_metrics",
]

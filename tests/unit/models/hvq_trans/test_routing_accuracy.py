# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Routing accuracy metric."""

import math

import pytest
import torch

from anomalib_hvq.models.hvq_trans.routing_accuracy import RoutingAccuracy


def test_accuracy_per_class_and_confusion_table() -> None:
    metric = RoutingAccuracy(num_classes=3)
    metric.update(routed=torch.tensor([0, 0, 1, 2, 1]), target=torch.tensor([0, 0, 1, 1, 1]))
    assert metric.compute().item() == pytest.approx(0.8)
    per_class = metric.per_class().tolist()
    assert per_class[:2] == pytest.approx([1.0, 2 / 3]) and math.isnan(per_class[2])
    table = metric.table(["a", "b", "c"])
    assert "| b | 0 | 2 | 1 | 66.7 |" in table
    metric.reset()
    assert math.isnan(metric.compute().item())


def test_logged_values_skip_classes_without_images() -> None:
    metric = RoutingAccuracy(num_classes=3)
    metric.update(routed=torch.tensor([0, 1, 0]), target=torch.tensor([0, 0, 1]))  # class 2 has no image
    logged = {name: float(value) for name, value in metric.logged(["a", "b", "c"]).items()}
    assert logged == pytest.approx({"routing_accuracy": 1 / 3, "routing_accuracy/a": 0.5, "routing_accuracy/b": 0.0})

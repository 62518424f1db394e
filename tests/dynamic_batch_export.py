# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Shared check: a model's eval forward exports with ``torch.export`` for any batch size."""

import torch
from torch import nn


def assert_exports_with_dynamic_batch(model: nn.Module, image_size: int = 64) -> None:
    """Export with an example batch of 2 and a dynamic batch dim; run batch 3 against eager (1e-4)."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    example = (torch.randn(2, 3, image_size, image_size),)
    exported = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    images = torch.randn(3, 3, image_size, image_size)
    with torch.no_grad():
        eager = model(images)
    result = exported.module()(images)
    torch.testing.assert_close(result.anomaly_map, eager.anomaly_map, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(result.pred_score, eager.pred_score, rtol=1e-4, atol=1e-4)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Anomaly map and image score."""

import torch
from torch.nn import functional as F

from anomalib_hvq.models.hvq_trans.anomaly_map import AnomalyMapGenerator


def test_map_is_l2_error_plus_weighted_ot_upsampled_with_aligned_corners() -> None:
    features = torch.zeros(1, 2, 2, 2)
    reconstruction = torch.zeros(1, 2, 2, 2)
    reconstruction[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # L2 error 5 at the top-left token
    ot = torch.tensor([[0.0, 0.0, 0.0, 0.1]])  # bottom-right token
    anomaly_map, _ = AnomalyMapGenerator(ot_weight=10.0, pool_size=1)(reconstruction, features, ot, (3, 3))
    assert anomaly_map.shape == (1, 1, 3, 3)
    # align_corners=True keeps the corner values exactly and interpolates the centre.
    assert anomaly_map[0, 0, 0, 0] == 5.0
    assert anomaly_map[0, 0, 2, 2] == 1.0
    torch.testing.assert_close(anomaly_map[0, 0, 1, 1], torch.tensor(1.5))


def test_image_score_is_max_of_average_pooled_map() -> None:
    torch.manual_seed(0)
    features, reconstruction = torch.randn(2, 4, 14, 14), torch.randn(2, 4, 14, 14)
    ot = torch.rand(2, 196)
    generator = AnomalyMapGenerator()
    anomaly_map, score = generator(reconstruction, features, ot, (224, 224))
    expected = F.avg_pool2d(anomaly_map, 16, stride=1).amax(dim=(1, 2, 3))
    torch.testing.assert_close(score, expected)
    # A single hot pixel counts 1/256 of its value: pooling smooths isolated spikes.
    spiky = torch.zeros(1, 1, 32, 32)
    spiky[0, 0, 5, 5] = 256.0
    assert F.avg_pool2d(spiky, 16, stride=1).max() == 1.0

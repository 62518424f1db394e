# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Anomaly map and image score of HVQ-Trans."""

from __future__ import annotations

import torch
from torch import nn

from anomalib_hvq.models.components.reconstruction_score import feature_distance, upsample_and_score


class AnomalyMapGenerator(nn.Module):
    """Reconstruction error plus weighted OT score, upsampled to the image; image score from the map.

    Args:
        ot_weight: Weight of the OT score (80 in the paper's code).
        pool_size: Side of the average pool whose maximum is the image score (16 in the paper's code).

    """

    def __init__(self, ot_weight: float = 80.0, pool_size: int = 16) -> None:
        super().__init__()
        self.ot_weight = ot_weight
        self.pool_size = pool_size

    def forward(
        self,
        reconstruction: torch.Tensor,
        features: torch.Tensor,
        ot: torch.Tensor,
        image_size: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score features.

        Args:
            reconstruction: Reconstructed features, ``(B, C, h, w)``.
            features: Backbone features, ``(B, C, h, w)``.
            ot: OT score per token, ``(B, h*w)``.
            image_size: ``(H, W)`` of the input images.

        Returns:
            Anomaly map ``(B, 1, H, W)`` and image score ``(B,)``.

        """
        error = feature_distance(reconstruction, features)
        return upsample_and_score(error + self.ot_weight * ot.view_as(error), image_size, self.pool_size)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Anomaly map and image score of UniAD."""

from __future__ import annotations

import torch
from torch import nn

from anomalib_hvq.models.components.reconstruction_score import feature_distance, upsample_and_score


class AnomalyMapGenerator(nn.Module):
    """L2 feature reconstruction error, upsampled to the image; image score = max of the pooled map.

    No Gaussian blur, as in the official code; the "max" image score is the one the paper reports on
    MVTec AD (the map mean loses about 7 points of image AUROC there).

    Args:
        pool_size: Side of the average pool whose maximum is the image score (16 in the paper's code).

    """

    def __init__(self, pool_size: int = 16) -> None:
        super().__init__()
        self.pool_size = pool_size

    def forward(
        self, reconstruction: torch.Tensor, features: torch.Tensor, image_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score features.

        Args:
            reconstruction: Reconstructed features, ``(B, C, h, w)``.
            features: Backbone features, ``(B, C, h, w)``.
            image_size: ``(H, W)`` of the input images.

        Returns:
            Anomaly map ``(B, 1, H, W)`` and image score ``(B,)``.

        """
        return upsample_and_score(feature_distance(reconstruction, features), image_size, self.pool_size)

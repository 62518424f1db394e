"""Anomaly map and image score of HVQ-Trans."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


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
        error = (reconstruction.float() - features.float()).pow(2).sum(1, keepdim=True).sqrt()
        score = error + self.ot_weight * ot.view_as(error)
        # align_corners=True matches the reference's UpsamplingBilinear2d.
        anomaly_map = F.interpolate(score, size=image_size, mode="bilinear", align_corners=True)
        pool = min(self.pool_size, *image_size)
        pred_score = F.avg_pool2d(anomaly_map, pool, stride=1).flatten(1).amax(1)
        return anomaly_map, pred_score

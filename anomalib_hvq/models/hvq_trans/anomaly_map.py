# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Anomaly map and image score of HVQ-Trans."""

from __future__ import annotations

import torch
from torch import nn

from anomalib_hvq.models.components.reconstruction_score import feature_distance, upsample_and_score

from .score_calibration import ScoreCalibration


class AnomalyMapGenerator(nn.Module):
    """Reconstruction error plus weighted OT score, upsampled to the image; image score from the map.

    Args:
        ot_weight: Weight of the OT score (80 in the paper's code).
        pool_size: Side of the average pool whose maximum is the image score (16 in the paper's code).

    Attributes:
        calibration: When set (``HVQTransModel(calibrate_score=True)``), takes the per-class Mahalanobis norm of
            the residual and weights the OT score as fitted on normal validation images; ``None``: the paper's score.

    """

    def __init__(self, ot_weight: float = 80.0, pool_size: int = 16) -> None:
        super().__init__()
        self.ot_weight = ot_weight
        self.pool_size = pool_size
        self.calibration: ScoreCalibration | None = None

    def terms(
        self,
        reconstruction: torch.Tensor,
        features: torch.Tensor,
        ot: torch.Tensor,
        class_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the map's two terms per token, each ``(B, 1, h, w)``: the error and the weighted OT score.

        Args:
            reconstruction: Reconstructed features, ``(B, C, h, w)``.
            features: Backbone features, ``(B, C, h, w)``.
            ot: OT score per token, ``(B, h*w)``.
            class_index: Class each sample was scored with, ``(B,)``; needed with a calibration only.

        """
        ot = ot.view(ot.shape[0], 1, *features.shape[-2:])
        if self.calibration is None:
            return feature_distance(reconstruction, features), self.ot_weight * ot
        if class_index is None:
            msg = "A calibrated score whitens the residual per class: pass the class each sample was scored with."
            raise ValueError(msg)
        residual = reconstruction.float() - features.float()
        return self.calibration.error(residual, class_index), self.calibration.weighted_ot(ot)

    def forward(
        self,
        reconstruction: torch.Tensor,
        features: torch.Tensor,
        ot: torch.Tensor,
        image_size: tuple[int, int],
        class_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum the :meth:`terms` and upsample them to ``image_size`` ``(H, W)``.

        Returns:
            Anomaly map ``(B, 1, H, W)`` and image score ``(B,)``.

        """
        error, weighted_ot = self.terms(reconstruction, features, ot, class_index)
        return upsample_and_score(error + weighted_ot, image_size, self.pool_size)

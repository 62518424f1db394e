# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Scoring by feature reconstruction error, shared by UniAD and HVQ-Trans.

Both papers' code score a token by the L2 distance between its reconstructed and its backbone feature,
upsample the token grid to the image with ``align_corners=True`` bilinear interpolation (their
``UpsamplingBilinear2d``), add no blur, and score an image by the maximum of the average-pooled map.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def feature_distance(reconstruction: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Per-token L2 distance over channels (not squared), in float32.

    Args:
        reconstruction: Reconstructed features, ``(B, C, h, w)``.
        features: Backbone features, ``(B, C, h, w)``.

    Returns:
        Distance map, ``(B, 1, h, w)``.

    """
    return (reconstruction.float() - features.float()).pow(2).sum(1, keepdim=True).sqrt()


def upsample_and_score(
    token_scores: torch.Tensor, image_size: tuple[int, int], pool_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Upsample a token score map to the image and score each image.

    Args:
        token_scores: Score per token, ``(B, 1, h, w)``.
        image_size: ``(H, W)`` of the input images.
        pool_size: Side of the stride-1 average pool whose maximum is the image score (16 in both
            papers' code; pooling keeps a single hot token from deciding the image score).

    Returns:
        Anomaly map ``(B, 1, H, W)`` and image score ``(B,)``.

    """
    anomaly_map = F.interpolate(token_scores, size=tuple(image_size), mode="bilinear", align_corners=True)
    pool = min(pool_size, *image_size)
    # A square mean is a column mean of row means: two 1-D pools cost 2k instead of k^2 additions per pixel
    # (the k x k pool was a tenth of the whole model's CPU time at 224 px).
    rows = F.avg_pool2d(anomaly_map, (pool, 1), stride=1)
    pred_score = F.avg_pool2d(rows, (1, pool), stride=1).flatten(1).amax(1)
    return anomaly_map, pred_score

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Score calibration: both anomaly-score terms brought to the same scale on normal validation images.

The paper's map is ``||rec - feat||_2 + 80 * OT``. With other backbones or short schedules the two terms live on
very different scales (EfficientNet-Lite0 after 30 epochs: the error is about 150 times the OT score on normal
tokens), so the sum is the error term alone. Calibration reads, label-free, off normal validation images:

- per class and channel, the mean and standard deviation of the residual ``rec - feat``; the error term becomes
  the norm of the standardised residual (no channel dominates by its scale, and a class's typical residual,
  e.g. a texture the decoder always smooths, is not an anomaly);
- the OT weight that gives both terms the same standard deviation on those tokens.

Defaults (before fitting) are the identity and the constructor's OT weight, i.e. the paper's score.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

# A channel whose validation residual barely varies would make any deviation infinitely anomalous: its scale is
# at least this fraction of the mean channel scale.
SCALE_FLOOR = 1e-3


class ScoreCalibration(nn.Module):
    """Per-class residual standardisation and a balanced OT weight, fitted on normal validation tokens.

    Args:
        num_classes: Number of classes K.
        channels: Feature channels C.
        ot_weight: OT weight until :meth:`fit` sets the balanced one.

    """

    def __init__(self, num_classes: int, channels: int, ot_weight: float) -> None:
        super().__init__()
        self.register_buffer("residual_mean", torch.zeros(num_classes, channels))
        self.register_buffer("residual_scale", torch.ones(num_classes, channels))
        self.register_buffer("ot_weight", torch.tensor(float(ot_weight)))
        self.register_buffer("fitted", torch.tensor(False))

    def error(self, residual: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """Norm of the standardised residual ``(B, 1, h, w)`` of residuals ``(B, C, h, w)`` of classes ``(B,)``."""
        mean = self.residual_mean[class_index][:, :, None, None]
        scale = self.residual_scale[class_index][:, :, None, None]
        return ((residual.float() - mean) / scale).pow(2).sum(1, keepdim=True).sqrt()

    @torch.no_grad()
    def fit(self, residual: torch.Tensor, ot: torch.Tensor, class_index: torch.Tensor) -> None:
        """Fit on the terms of normal validation images.

        Args:
            residual: ``rec - feat`` of each image, ``(N, C, h, w)``.
            ot: OT score per token, ``(N, 1, h, w)``.
            class_index: Class of each image ``(N,)`` (a class without images gets the pooled statistics).

        """
        residual, ot = residual.float(), ot.float()
        tokens = residual.permute(0, 2, 3, 1).flatten(1, 2)  # (N, h*w, C)
        pooled_mean, pooled_scale = _mean_and_scale(tokens.flatten(0, 1))
        mean = pooled_mean.expand_as(self.residual_mean).clone()
        scale = pooled_scale.expand_as(self.residual_scale).clone()
        for k in class_index.unique().tolist():  # at most K classes, once per validation epoch
            mean[k], scale[k] = _mean_and_scale(tokens[class_index == k].flatten(0, 1))
        self.residual_mean.copy_(mean)
        self.residual_scale.copy_(scale)
        error, ot_spread = self.error(residual, class_index), ot.std()
        if bool(ot_spread > 0) and bool(torch.isfinite(error).all()):
            self.ot_weight.fill_(float(error.std() / ot_spread))
        else:
            logger.warning("Score calibration: the OT score does not vary on the validation images; weight kept.")
        self.fitted.fill_(True)
        logger.info(
            "Score calibration on %d normal validation image(s): OT weight %.4g (error and OT equally spread).",
            len(class_index),
            float(self.ot_weight),
        )


def _mean_and_scale(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (floored) of tokens ``(M, C)``, each ``(C,)``."""
    mean = tokens.mean(0)
    scale = tokens.std(0) if len(tokens) > 1 else torch.ones_like(mean)
    return mean, scale.clamp_min(SCALE_FLOOR * float(scale.mean().clamp_min(1e-12)))

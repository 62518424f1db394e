# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""HVQ-Trans training loss: feature reconstruction plus weighted commitment."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F


class LossTerms(NamedTuple):
    """Total loss and its parts (scalars)."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    commitment: torch.Tensor


class HVQTransLoss(nn.Module):
    """``MSE(reconstruction, features) + commitment_weight * mean_b(sum over levels of commitment_b)``.

    Codebooks learn by EMA, so there is no codebook term; the paper's code has no OT term in training.

    Args:
        commitment_weight: Weight of the commitment term (0.25 in the paper's code).

    """

    def __init__(self, commitment_weight: float = 0.25) -> None:
        super().__init__()
        self.commitment_weight = commitment_weight

    def forward(self, reconstruction: torch.Tensor, features: torch.Tensor, commitment: torch.Tensor) -> LossTerms:
        """Compute the loss.

        Args:
            reconstruction: Reconstructed features, ``(B, C, H, W)``.
            features: Backbone features (the target), ``(B, C, H, W)``.
            commitment: Per-sample commitment summed over levels, ``(B,)``.

        """
        reconstruction_loss = F.mse_loss(reconstruction, features)
        commitment_loss = commitment.mean()
        return LossTerms(
            reconstruction_loss + self.commitment_weight * commitment_loss,
            reconstruction_loss,
            commitment_loss,
        )

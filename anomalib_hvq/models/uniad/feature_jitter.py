# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Feature jitter (UniAD): train the reconstruction as a denoiser of the backbone features."""

from __future__ import annotations

import torch
from torch import nn


class FeatureJitter(nn.Module):
    """Add Gaussian noise scaled to each token's norm, in training only.

    Each token ``f`` of ``C`` channels becomes ``f + sigma * eps`` with ``eps ~ N(0, I)`` and
    ``sigma = scale * ||f||_2 / C`` (the official formula: divided by ``C``, not ``sqrt(C)``). With the
    default scale 20 and 272 channels the noise norm is about 1.2 times the token norm. The reconstruction
    target stays the clean feature.

    Args:
        scale: Noise scale (20 in the paper's code); 0 disables the jitter.
        prob: Probability that a training batch is jittered (1 in the paper's code).

    """

    def __init__(self, scale: float = 20.0, prob: float = 1.0) -> None:
        super().__init__()
        if scale < 0 or not 0 <= prob <= 1:
            msg = f"Feature jitter needs scale >= 0 and 0 <= prob <= 1, got scale={scale}, prob={prob}."
            raise ValueError(msg)
        self.scale = scale
        self.prob = prob

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Jitter tokens ``(B, L, C)`` in training mode; return them unchanged in eval mode."""
        if not self.training or self.scale == 0 or self.prob == 0:
            return tokens
        # One coin flip per batch, as in the official code.
        if self.prob < 1 and torch.rand(()).item() > self.prob:
            return tokens
        sigma = self.scale * tokens.norm(dim=-1, keepdim=True) / tokens.shape[-1]
        return tokens + sigma * torch.randn_like(tokens)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Label-free class routing: pick each image's codebooks without a ground-truth label."""

from __future__ import annotations

from enum import Enum

import torch
from torch import distributed as dist
from torch import nn
from torch.nn import functional as F


class ClassRouting(str, Enum):
    """How the class of a validation/test image is chosen.

    ``centroid``: label-free, nearest class centroid of pooled backbone features. ``codebook_fit``:
    label-free, the class whose top-level codebook quantizes the image's encoder tokens with the lowest
    error. ``oracle``: the batch's ground-truth class (the paper's protocol). Predict and exported models
    use the label-free method (``centroid`` when ``oracle`` is chosen).
    """

    CENTROID = "centroid"
    CODEBOOK_FIT = "codebook_fit"
    ORACLE = "oracle"


class CentroidRouter(nn.Module):
    """Nearest class centroid (cosine) of globally pooled backbone features.

    The centroids are running means accumulated during training, stored as buffers, so they travel
    with checkpoints and exported graphs and add no trainable parameters.

    Args:
        num_classes: Number of classes K.
        dim: Pooled feature size C.

    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("feature_sum", torch.zeros(num_classes, dim))
        self.register_buffer("count", torch.zeros(num_classes))

    @torch.no_grad()
    def update(self, pooled: torch.Tensor, class_index: torch.Tensor) -> None:
        """Add pooled features ``(B, C)`` of classes ``(B,)`` to the running sums (of all processes under DDP).

        Classes with a non-finite pooled feature in the batch are not updated.
        """
        feature_sum = torch.zeros_like(self.feature_sum).index_add_(0, class_index, pooled.to(self.feature_sum.dtype))
        count = torch.zeros_like(self.count).index_add_(
            0, class_index, torch.ones_like(class_index, dtype=self.count.dtype)
        )
        if dist.is_available() and dist.is_initialized():
            # DDP broadcasts rank 0's buffers before every forward: without this sum, only rank 0's images would count.
            dist.all_reduce(feature_sum)
            dist.all_reduce(count)
        # A class whose pooled features hold a NaN/inf (a bad image) is left out of this update, without a host
        # sync: one such image would make its centroid NaN and every later routing decision arbitrary.
        finite = torch.isfinite(feature_sum).all(1)
        self.feature_sum += torch.where(finite.unsqueeze(1), feature_sum, 0)
        self.count += torch.where(finite, count, 0)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Return the class index ``(B,)`` whose centroid is most similar to each pooled feature ``(B, C)``."""
        centroids = self.feature_sum / self.count.clamp(min=1).unsqueeze(1)
        similarity = F.normalize(pooled, dim=-1) @ F.normalize(centroids, dim=-1).T
        # Classes never seen in training cannot be chosen.
        similarity = similarity.masked_fill(self.count.unsqueeze(0) == 0, float("-inf"))
        return similarity.argmax(-1)


def codebook_fit_route(tokens: torch.Tensor, codebooks: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Class whose codebook quantizes each image's tokens with the lowest mean squared error.

    Args:
        tokens: Top-level encoder tokens, ``(B, L, D)``.
        codebooks: Top-level codebook of every class, ``(K, N, D)``.
        candidates: Classes that may be chosen (seen in training), ``(K,)`` bool.

    Returns:
        Class index per image, ``(B,)``.

    """
    distance = (
        tokens.pow(2).sum(-1)[:, None, :, None]
        - 2 * torch.einsum("bld,knd->bkln", tokens, codebooks)
        + codebooks.pow(2).sum(-1)[None, :, None, :]
    )
    error = distance.amin(-1).mean(-1)
    return error.masked_fill(~candidates.unsqueeze(0), float("inf")).argmin(-1)

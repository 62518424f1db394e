# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""k-means with k-means++ seeding, batched over classes: data-driven starting points for the codebooks.

Every class is clustered at once: its tokens are one row of a padded ``(K, M, D)`` tensor with a
``(K, M)`` validity mask, so there is no Python loop over classes or tokens (only over the seeding
picks and the Lloyd iterations, as k-means itself needs).
"""

from __future__ import annotations

import torch


def group_by_class(
    tokens: torch.Tensor, class_index: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack each class's tokens into one padded row.

    Args:
        tokens: Tokens of each sample, ``(B, L, D)``.
        class_index: Class per sample, ``(B,)``.
        num_classes: Number of classes K.

    Returns:
        Tokens per class ``(K, M, D)`` with ``M = L x`` (samples of the most frequent class), and the
        ``(K, M)`` mask of the real (non-padding) tokens.

    """
    batch, length, dim = tokens.shape
    counts = torch.bincount(class_index, minlength=num_classes)
    order = torch.argsort(class_index, stable=True)
    sorted_class = class_index[order]
    offsets = torch.cumsum(counts, 0) - counts
    slot = torch.arange(batch, device=tokens.device) - offsets[sorted_class]
    width = int(counts.max()) if batch else 0
    grouped = tokens.new_zeros(num_classes, width, length, dim)
    grouped[sorted_class, slot] = tokens[order]
    valid = torch.zeros(num_classes, width, length, dtype=torch.bool, device=tokens.device)
    valid[sorted_class, slot] = True
    return grouped.view(num_classes, width * length, dim), valid.view(num_classes, width * length)


def _squared_distance(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(K, M, N)`` between points ``(K, M, D)`` and centres ``(K, N, D)``."""
    return (
        points.pow(2).sum(-1, keepdim=True) - 2 * points @ centres.transpose(1, 2) + centres.pow(2).sum(-1).unsqueeze(1)
    ).clamp_min(0)


def kmeans_plus_plus(
    points: torch.Tensor, valid: torch.Tensor, num_centres: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """k-means++ seeding (Arthur and Vassilvitskii, 2007) of every class at once.

    Each next centre is a valid point drawn with probability proportional to its squared distance to the
    nearest centre so far, which spreads the centres over the data.

    Args:
        points: Points per class, ``(K, M, D)``.
        valid: Which points are real, ``(K, M)``; a class without any gets arbitrary (unused) centres.
        num_centres: Centres per class N.
        generator: Random generator of the draws.

    Returns:
        Centres ``(K, N, D)``.

    """
    num_classes, _, dim = points.shape
    rows = torch.arange(num_classes, device=points.device)
    # A class without points draws uniformly so that multinomial has a valid distribution; its result is unused.
    has_points = valid.any(1, keepdim=True)
    weights = torch.where(has_points, valid.float(), torch.ones_like(valid, dtype=torch.float))
    centres = points.new_empty(num_classes, num_centres, dim)
    nearest = torch.full_like(weights, float("inf"))
    for index in range(num_centres):
        pick = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        centres[:, index] = points[rows, pick]
        distance = (points - centres[:, index : index + 1]).pow(2).sum(-1)
        nearest = torch.minimum(nearest, distance)
        # Once every point is a centre (fewer distinct points than centres), fall back to uniform draws.
        spread = nearest * valid
        weights = torch.where(spread.sum(1, keepdim=True) > 0, spread, weights)
    return centres


def kmeans(
    points: torch.Tensor,
    valid: torch.Tensor,
    num_centres: int,
    iterations: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from k-means++ seeds, per class, batched.

    Args:
        points: Points per class, ``(K, M, D)``.
        valid: Which points are real, ``(K, M)``.
        num_centres: Centres per class N.
        iterations: Lloyd iterations (assign, then move each centre to its points' mean).
        generator: Random generator of the seeding.

    Returns:
        Centres ``(K, N, D)`` and the number of valid points assigned to each ``(K, N)`` (float). A centre
        that loses all its points keeps its last position.

    """
    centres = kmeans_plus_plus(points, valid, num_centres, generator)
    for _ in range(iterations):
        counts, sums = _cluster_statistics(points, valid, centres)
        centres = torch.where(counts.unsqueeze(-1) > 0, sums / counts.clamp_min(1).unsqueeze(-1), centres)
    return centres, _cluster_statistics(points, valid, centres)[0]


def _cluster_statistics(
    points: torch.Tensor, valid: torch.Tensor, centres: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Count ``(K, N)`` and sum ``(K, N, D)`` of the valid points ``(K, M, D)`` nearest to each centre."""
    num_classes, num_centres, dim = centres.shape
    assignment = _squared_distance(points, centres).argmin(-1)
    flat = (torch.arange(num_classes, device=points.device).unsqueeze(1) * num_centres + assignment).flatten()
    weight = valid.to(points.dtype)
    counts = points.new_zeros(num_classes * num_centres).index_add_(0, flat, weight.flatten())
    sums = points.new_zeros(num_classes * num_centres, dim).index_add_(
        0, flat, (points * weight.unsqueeze(-1)).flatten(0, 1)
    )
    return counts.view(num_classes, num_centres), sums.view(num_classes, num_centres, dim)


def first_per_class(class_index: torch.Tensor, taken: torch.Tensor, limit: int) -> torch.Tensor:
    """Mask ``(B,)`` of the samples that are among the first ``limit`` of their class.

    Args:
        class_index: Class per sample ``(B,)``, in stream order.
        taken: Samples of each class ``(K,)`` seen in earlier batches.
        limit: Samples wanted per class.

    """
    same = class_index.unsqueeze(0) == class_index.unsqueeze(1)
    rank = taken[class_index] + torch.tril(same, diagonal=-1).sum(1)  # rank among the class's samples so far
    return rank < limit

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""How the codebooks start and stay alive: the paper's recipe (defaults) or the fast-converging one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from anomalib.data import Batch

from .kmeans import first_per_class


@dataclass(frozen=True)
class CodebookRecipe:
    """Codebook initialisation and dead-code revival; the defaults are the official code's (neither).

    Args:
        kmeans_init: At the start of training, set each class's codebooks to k-means centres (k-means++
            seeding) of that class's encoder tokens, level by level, instead of N(0, 1) codes far from
            the data (which leaves most codes unused from the first step on).
        kmeans_iterations: Lloyd iterations after the seeding.
        kmeans_images_per_class: Training images per class whose tokens are clustered (at most; fewer if a
            class has fewer). Each gives ``h x w`` tokens (196 at 14x14).
        revive_after: Re-seed a code that no token of its class chose for this many consecutive training
            steps in which the class was present, from a random token of the current batch's samples of that
            class, with its EMA statistics reset to that one token. ``0``: never (official).

    """

    kmeans_init: bool = False
    kmeans_iterations: int = 10
    kmeans_images_per_class: int = 64
    revive_after: int = 0

    def __post_init__(self) -> None:
        """Reject settings that would silently do nothing or break training."""
        if self.kmeans_iterations < 0 or self.kmeans_images_per_class < 1 or self.revive_after < 0:
            msg = (
                f"Invalid CodebookRecipe {self}: kmeans_iterations and revive_after must be >= 0 and "
                "kmeans_images_per_class >= 1."
            )
            raise ValueError(msg)


def first_images_per_class(
    batches: Iterable[Batch],
    class_index_of: Callable[[Batch], torch.Tensor | None],
    features_of: Callable[[Batch], torch.Tensor],
    num_classes: int,
    limit: int,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Backbone features of the first ``limit`` training images of each class, for the k-means start.

    Args:
        batches: Training batches, read until every class has ``limit`` images (or to the end).
        class_index_of: Class per sample ``(B,)`` of a batch (``None``: all class 0).
        features_of: Backbone features ``(B, C, h, w)`` of a batch.
        num_classes: Number of classes K.
        limit: Images wanted per class.

    Returns:
        Features ``(N, C, h, w)``, their classes ``(N,)`` (on the CPU) and how many images each class gave.

    """
    taken = torch.zeros(num_classes, dtype=torch.long)
    features, classes = [], []
    for batch in batches:
        class_index = class_index_of(batch)
        class_index = class_index.cpu() if class_index is not None else torch.zeros(len(batch.image)).long()
        keep = first_per_class(class_index, taken, limit)
        taken += torch.bincount(class_index[keep], minlength=num_classes)
        if keep.any():
            batch_features = features_of(batch)
            features.append(batch_features[keep.to(batch_features.device)])
            classes.append(class_index[keep])
        if bool((taken >= limit).all()):
            break
    return torch.cat(features), torch.cat(classes), taken.tolist()

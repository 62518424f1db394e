# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""How the codebooks start and stay alive: the paper's recipe (defaults) or the fast-converging one."""

from __future__ import annotations

from dataclasses import dataclass


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

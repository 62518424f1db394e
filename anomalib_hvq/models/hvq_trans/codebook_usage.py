# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Codebook health: how many codes each level uses, to catch codebook collapse early."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class CodebookUsage(Metric):
    """Accumulates code counts per level and class; reports perplexity and the fraction of dead codes.

    Only classes seen since the last reset count: a class absent from an epoch says nothing about
    its codebook's health.

    Args:
        num_levels: Quantization levels (top first).
        num_classes: Classes K.
        num_codes: Codes per codebook N.

    """

    full_state_update = False

    def __init__(self, num_levels: int, num_classes: int, num_codes: int) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.level_names = ["top", *(f"lower{level}" for level in range(1, num_levels))]
        self.add_state("counts", torch.zeros(num_levels, num_classes * num_codes), dist_reduce_fx="sum")

    def update(self, codes: list[torch.Tensor], class_index: torch.Tensor) -> None:
        """Count ``codes`` (per level, each ``(B, L)``) of samples of classes ``class_index`` ``(B,)``."""
        for level, level_codes in enumerate(codes):
            flat = (class_index.unsqueeze(1) * self.num_codes + level_codes).flatten()
            self.counts[level] += torch.bincount(flat, minlength=self.counts.shape[1]).to(self.counts.dtype)

    def compute(self) -> dict[str, torch.Tensor]:
        """Per level ``l`` (``top``, then ``lower1``... deepest first): ``perplexity`` and ``dead_fraction``.

        Perplexity is ``exp(entropy)`` of the code distribution of each seen class, averaged over classes:
        N for uniform use of N codes, 1 for a collapsed codebook.
        """
        counts = self.counts.view(self.counts.shape[0], -1, self.num_codes)
        totals = counts.sum(-1)
        seen = totals > 0
        probs = counts / totals.clamp(min=1).unsqueeze(-1)
        entropy = -(probs * probs.clamp(min=1e-12).log()).sum(-1)
        seen_classes = seen.sum(-1).clamp(min=1)
        perplexity = (entropy.exp() * seen).sum(-1) / seen_classes
        dead = ((counts == 0).float().mean(-1) * seen).sum(-1) / seen_classes
        results = {}
        for level, name in enumerate(self.level_names):
            results[f"codebook/{name}/perplexity"] = perplexity[level]
            results[f"codebook/{name}/dead_fraction"] = dead[level]
        return results

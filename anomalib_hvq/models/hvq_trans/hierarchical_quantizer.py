# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Hierarchical vector quantization: a top code conditions every lower level.

The top level quantizes the last encoder layer. Each lower level quantizes the concatenation of an
earlier encoder output and the top code, deepest first, ending with the input tokens; these lower
codes are the prototypes the decoder attends to.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .ema_codebook import EMAVectorQuantizer


class HierarchicalCodes(NamedTuple):
    """Output of the hierarchical quantizer.

    Attributes:
        memories: Quantized lower levels ``[q(E_{n-1}+Q), ..., q(E_0+Q)]``, each ``(B, L, 2D)``.
        inputs: Input of each level, top first (``E_n``, ``(B, L, D)``), then ``concat(E_k, Q_top)``
            ``(B, L, 2D)`` for k = n-1 .. 0; the last is the lowest level's, where the OT score is taken.
        codes: Code indices per level, top first, each ``(B, L)``.
        commitment: Commitment loss summed over levels, per sample, ``(B,)``.

    """

    memories: list[torch.Tensor]
    inputs: list[torch.Tensor]
    codes: list[torch.Tensor]
    commitment: torch.Tensor


class HierarchicalQuantizer(nn.Module):
    """Top quantizer on ``D``-d tokens plus ``num_lower`` quantizers on ``2D``-d tokens, per class.

    Args:
        num_classes: Number of classes, each with its own set of codebooks.
        dim: Encoder token size D.
        num_lower: Lower levels, one per encoder output below the last (= encoder layers).
        num_codes: Codes per codebook.
        decay: EMA decay.
        eps: Laplace smoothing.
        sequential: Official one-sample-at-a-time EMA updates.
        revive_after: Re-seed codes unused for this many steps of their class (0: never).

    """

    def __init__(
        self,
        num_classes: int,
        dim: int,
        num_lower: int,
        num_codes: int = 512,
        decay: float = 0.99,
        eps: float = 1e-5,
        sequential: bool = False,
        revive_after: int = 0,
    ) -> None:
        super().__init__()
        self.top = EMAVectorQuantizer(num_classes, dim, num_codes, decay, eps, sequential, revive_after)
        self.lower = nn.ModuleList(
            EMAVectorQuantizer(num_classes, 2 * dim, num_codes, decay, eps, sequential, revive_after)
            for _ in range(num_lower)
        )

    @property
    def levels(self) -> list[EMAVectorQuantizer]:
        """All quantizers, top first, lowest last."""
        return [self.top, *self.lower]

    def forward(self, encoder_outputs: list[torch.Tensor], class_index: torch.Tensor) -> HierarchicalCodes:
        """Quantize ``[E_0, ..., E_n]`` (each ``(B, L, D)``, E_0 the input tokens) for ``class_index`` ``(B,)``."""
        if len(encoder_outputs) != len(self.lower) + 1:
            msg = f"Expected {len(self.lower) + 1} encoder outputs, got {len(encoder_outputs)}."
            raise ValueError(msg)
        top = self.top(encoder_outputs[-1], class_index)
        codes, commitment, memories, inputs = [top.codes], top.commitment, [], [encoder_outputs[-1]]
        for quantizer, tokens in zip(self.lower, reversed(encoder_outputs[:-1]), strict=True):
            inputs.append(torch.cat([tokens, top.quantized], dim=-1))
            level = quantizer(inputs[-1], class_index)
            memories.append(level.quantized)
            codes.append(level.codes)
            commitment = commitment + level.commitment
        return HierarchicalCodes(memories, inputs, codes, commitment)

    @torch.no_grad()
    def kmeans_init(
        self,
        encoder_outputs: list[torch.Tensor],
        class_index: torch.Tensor,
        iterations: int = 10,
        generator: torch.Generator | None = None,
    ) -> None:
        """Set every level's codebooks of the classes in ``class_index`` ``(B,)`` to k-means centres of its inputs.

        Top level first: each lower level clusters ``concat(E_k, Q_top)`` with ``Q_top`` quantized by the new
        top codebooks, exactly the inputs it will see in training.
        """
        top = self.top.kmeans_init(encoder_outputs[-1], class_index, iterations, generator)
        for quantizer, tokens in zip(self.lower, reversed(encoder_outputs[:-1]), strict=True):
            quantizer.kmeans_init(torch.cat([tokens.float(), top], dim=-1), class_index, iterations, generator)

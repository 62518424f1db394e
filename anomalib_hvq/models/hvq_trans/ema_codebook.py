# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""EMA vector quantizer with one codebook per class ("class-switched" codebooks).

Codebooks learn by exponential moving averages of the tokens assigned to each code (VQ-VAE-2
style), never by gradient. All classes' codebooks live in one ``(K, N, D)`` buffer so that a batch
that mixes classes is quantized with one gather and updated with one scatter: no per-sample loop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import distributed as dist
from torch import nn

from anomalib_hvq.models.components.precision import float32_region


class Quantized(NamedTuple):
    """Output of a quantizer call.

    Attributes:
        quantized: Straight-through quantized tokens, ``(B, L, D)``: values of the codes, gradient of the input.
        codes: Index of the chosen code per token, ``(B, L)``.
        commitment: Per-sample commitment loss ``mean((sg(e) - x)^2)``, ``(B,)``.

    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment: torch.Tensor


class EMAVectorQuantizer(nn.Module):
    """Nearest-code quantizer with per-class EMA codebooks.

    Args:
        num_classes: Number of classes K, each with its own codebook.
        dim: Token size D.
        num_codes: Codes per codebook N.
        decay: EMA decay of the code statistics.
        eps: Laplace smoothing of the code counts.
        sequential: Quantize and update one sample at a time, each sample seeing the codebooks updated by
            the samples before it (the official order; a training-only Python loop over the batch).

    """

    def __init__(
        self,
        num_classes: int,
        dim: int,
        num_codes: int = 512,
        decay: float = 0.99,
        eps: float = 1e-5,
        sequential: bool = False,
    ) -> None:
        super().__init__()
        self.num_codes, self.sequential = num_codes, sequential
        self.decay = decay
        self.eps = eps
        embed = torch.randn(num_classes, num_codes, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(num_classes, num_codes))
        self.register_buffer("embed_avg", embed.clone())

    @property
    def num_classes(self) -> int:
        """Number of per-class codebooks."""
        return self.embed.shape[0]

    def codebook(self, class_index: torch.Tensor) -> torch.Tensor:
        """Codebook of each sample's class, ``(B, N, D)`` for ``class_index`` ``(B,)``."""
        return self.embed[class_index]

    def forward(self, x: torch.Tensor, class_index: torch.Tensor) -> Quantized:
        """Quantize tokens ``x`` ``(B, L, D)`` with the codebooks of ``class_index`` ``(B,)``.

        In training mode the codebooks of the classes in the batch are EMA-updated after the
        assignment, so the returned codes use the codebooks from before the update. Everything runs
        in float32, also under autocast: bfloat16 distances would pick wrong codes and bfloat16 EMA
        statistics would lose the small updates.
        """
        if self.training and self.sequential and x.shape[0] > 1:
            parts = [self(sample.unsqueeze(0), cls.view(1)) for sample, cls in zip(x, class_index, strict=True)]
            return Quantized(*(torch.cat(field) for field in zip(*parts, strict=True)))
        with float32_region(x.device.type):
            return self._quantize(x.float(), class_index)

    def _quantize(self, x: torch.Tensor, class_index: torch.Tensor) -> Quantized:
        """Batched nearest-code assignment (and EMA update in training) of float32 tokens ``(B, L, D)``."""
        codebook = self.codebook(class_index)
        distance = (
            x.pow(2).sum(-1, keepdim=True) - 2 * x @ codebook.transpose(1, 2) + codebook.pow(2).sum(-1).unsqueeze(1)
        )
        codes = distance.argmin(-1)
        chosen = torch.gather(codebook, 1, codes.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        if self.training:
            self._ema_update(x.detach(), codes, class_index)
        commitment = (chosen.detach() - x).pow(2).mean(dim=(1, 2))
        return Quantized(x + (chosen - x).detach(), codes, commitment)

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, codes: torch.Tensor, class_index: torch.Tensor) -> None:
        """One EMA step per class present in the batch, from the summed statistics of its samples."""
        num_classes, num_codes, dim = self.embed.shape
        flat_code = (class_index.unsqueeze(1) * num_codes + codes).flatten()
        counts = torch.bincount(flat_code, minlength=num_classes * num_codes).to(x.dtype)
        sums = x.new_zeros(num_classes * num_codes, dim).index_add_(0, flat_code, x.reshape(-1, dim))
        present = torch.bincount(class_index, minlength=num_classes).to(x.dtype)
        if dist.is_available() and dist.is_initialized():
            # Reduce per (class, code), so that each class's codebook only sees its own class's tokens.
            for stat in (counts, sums, present):
                dist.all_reduce(stat)
        present = present > 0
        counts, sums = counts.view(num_classes, num_codes), sums.view(num_classes, num_codes, dim)

        cluster_size = self.cluster_size * self.decay + counts * (1 - self.decay)
        embed_avg = self.embed_avg * self.decay + sums * (1 - self.decay)
        total = cluster_size.sum(-1, keepdim=True)
        smoothed = (cluster_size + self.eps) / (total + num_codes * self.eps) * total
        embed = embed_avg / smoothed.unsqueeze(-1)

        keep = present.view(-1, 1)
        self.cluster_size.copy_(torch.where(keep, cluster_size, self.cluster_size))
        self.embed_avg.copy_(torch.where(keep.unsqueeze(-1), embed_avg, self.embed_avg))
        self.embed.copy_(torch.where(keep.unsqueeze(-1), embed, self.embed))

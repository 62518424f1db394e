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

from .kmeans import group_by_class, kmeans


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
        revive_after: Re-seed codes left unused for this many training steps of their class (0: never, official).

    """

    def __init__(
        self,
        num_classes: int,
        dim: int,
        num_codes: int = 512,
        decay: float = 0.99,
        eps: float = 1e-5,
        sequential: bool = False,
        revive_after: int = 0,
    ) -> None:
        super().__init__()
        self.num_codes, self.sequential, self.revive_after = num_codes, sequential, revive_after
        self.decay = decay
        self.eps = eps
        embed = torch.randn(num_classes, num_codes, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(num_classes, num_codes))
        self.register_buffer("embed_avg", embed.clone())
        # Revival bookkeeping is training state, not model state: not saved, so checkpoints keep their keys.
        self.register_buffer("idle_steps", torch.zeros(num_classes, num_codes), persistent=False)
        self.register_buffer("revived", torch.zeros((), dtype=torch.long), persistent=False)

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
        codes, chosen = self._nearest(x, class_index)
        if self.training:
            self._ema_update(x.detach(), codes, class_index)
        commitment = (chosen.detach() - x).pow(2).mean(dim=(1, 2))
        return Quantized(x + (chosen - x).detach(), codes, commitment)

    def _nearest(self, x: torch.Tensor, class_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index ``(B, L)`` and value ``(B, L, D)`` of the nearest code of each token's class."""
        codebook = self.codebook(class_index)
        distance = (
            x.pow(2).sum(-1, keepdim=True) - 2 * x @ codebook.transpose(1, 2) + codebook.pow(2).sum(-1).unsqueeze(1)
        )
        codes = distance.argmin(-1)
        return codes, torch.gather(codebook, 1, codes.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

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
        # A class whose tokens hold a NaN/inf (a bad image, a diverged step) keeps its codebook: one such batch
        # would otherwise write NaN into `embed_avg` for good. Checked on the class sums, without a host sync.
        finite = torch.isfinite(sums.view(num_classes, -1)).all(1)
        present = (present > 0) & finite
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
        if self.revive_after > 0:
            self._revive(x, class_index, counts > 0, present)

    @torch.no_grad()
    def kmeans_init(
        self, x: torch.Tensor, class_index: torch.Tensor, iterations: int = 10, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Set the codebooks of the classes in ``class_index`` ``(B,)`` to k-means centres of their tokens ``x``.

        Each class's EMA statistics become those of its clusters, per sample of the class: ``cluster_size`` is
        the average number of a sample's tokens in each cluster, ``embed_avg`` the centre times that, so the
        first EMA steps continue from the centres instead of pulling them to the origin. Classes absent from
        ``class_index`` keep their codebooks. Under DDP every process takes rank 0's result.

        Returns:
            ``x`` ``(B, L, D)`` replaced by the nearest new code of its class (the next level's input).

        """
        x = x.float()
        points, valid = group_by_class(x, class_index, self.num_classes)
        centres, counts = kmeans(points, valid, self.num_codes, iterations, generator)
        samples = torch.bincount(class_index, minlength=self.num_classes).to(x.dtype)
        sizes = counts / samples.clamp_min(1).unsqueeze(1)
        keep = (samples > 0).view(-1, 1, 1)
        self.embed.copy_(torch.where(keep, centres, self.embed))
        self.cluster_size.copy_(torch.where(keep[..., 0], sizes, self.cluster_size))
        self.embed_avg.copy_(torch.where(keep, centres * sizes.unsqueeze(-1), self.embed_avg))
        if dist.is_available() and dist.is_initialized():
            for buffer in (self.embed, self.cluster_size, self.embed_avg):
                dist.broadcast(buffer, src=0)
        return self._nearest(x, class_index)[1]

    @torch.no_grad()
    def _revive(self, x: torch.Tensor, class_index: torch.Tensor, used: torch.Tensor, present: torch.Tensor) -> None:
        """Re-seed the codes idle for ``revive_after`` steps from random tokens of their class in this batch.

        Args:
            x: This batch's tokens ``(B, L, D)``.
            class_index: Class per sample ``(B,)``.
            used: Whether any token (of any process) chose each code this step, ``(K, N)``.
            present: Whether each class was in this step's batch (of any process) with finite tokens, ``(K,)``.

        """
        idle = torch.where(used, 0, self.idle_steps + present.unsqueeze(1).to(self.idle_steps.dtype))
        # A class skipped for non-finite tokens (``present`` False) keeps its idle counts and revives nothing.
        idle = torch.where(present.unsqueeze(1), idle, self.idle_steps)
        dead = idle >= self.revive_after
        idle[dead] = 0
        self.idle_steps.copy_(idle)
        dead_class, dead_code = dead.nonzero(as_tuple=True)
        if dead_class.numel() == 0:
            return
        # One random token of a sample of the dead code's class; classes absent here are filled in by DDP below.
        candidates = (class_index.unsqueeze(0) == dead_class.unsqueeze(1)).to(x.dtype)
        local = candidates.sum(1) > 0
        sample = torch.multinomial(torch.where(local.unsqueeze(1), candidates, 1.0), 1).squeeze(1)
        position = torch.randint(x.shape[1], sample.shape, device=x.device)
        tokens = x[sample, position]
        if dist.is_available() and dist.is_initialized():
            # The lowest-ranked process that holds a sample of the class provides the token for every process.
            rank, world = dist.get_rank(), dist.get_world_size()
            owner = torch.where(local, rank, world)
            dist.all_reduce(owner, op=dist.ReduceOp.MIN)
            # where, not a product: a NaN token of another class must not leak into the sum as 0 * NaN.
            tokens = torch.where((owner == rank).unsqueeze(1), tokens, 0)
            dist.all_reduce(tokens)
        self.embed[dead_class, dead_code] = tokens
        self.cluster_size[dead_class, dead_code] = 1.0
        self.embed_avg[dead_class, dead_code] = tokens
        self.revived += dead_class.numel()

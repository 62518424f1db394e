# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Prototype-oriented decoder: reconstruct features by attending to the quantized prototypes.

HVQ-Trans's decoder starts from the top-level prototypes and, layer by layer, cross-attends to the
prototypes of one level (highest first): the reconstruction can only be built from what the codebooks of
the image's class hold, so an anomaly, having no prototype, is not reconstructed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from anomalib_hvq.models.components.transformer import TransformerDecoderLayer


class PrototypeDecoder(nn.Module):
    """Stack of decoder layers, one per quantization level, and a final LayerNorm.

    Args:
        dim: Decoder width (twice the encoder width: each memory joins two levels' prototypes).
        num_heads: Attention heads.
        hidden_dim: Feed-forward width.
        num_layers: Decoder layers = quantized memories it attends to.
        dropout: Dropout in the layers.

    """

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, num_layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(dim, num_heads, hidden_dim, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, memories: Sequence[torch.Tensor], pos: torch.Tensor) -> torch.Tensor:
        """Decode ``(B, L, dim)`` tokens from the prototype memories (each ``(B, L, dim)``), positions ``(L, dim)``.

        The first memory is both the initial state and the first layer's cross-attention target.
        """
        state = memories[0]
        for layer, memory in zip(self.layers, memories, strict=True):
            state = layer(state, memory, pos)
        return self.norm(state)


def rename_legacy_decoder_keys(state_dict: dict[str, torch.Tensor], prefix: str, *_: object) -> None:
    """Rename, in place, the decoder keys of checkpoints written before :class:`PrototypeDecoder` existed.

    They held the layers as ``decoder.<i>.`` and the norm as ``decoder_norm.`` next to them; both now live in
    the decoder module (``decoder.layers.<i>.``, ``decoder.norm.``, the official code's names too). Registered
    as a ``load_state_dict`` pre-hook of the model owning the decoder (``prefix`` is that model's).
    """
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix) :]
        head, _, tail = rest.partition(".")
        if head == "decoder_norm":
            state_dict[f"{prefix}decoder.norm.{tail}"] = state_dict.pop(key)
        elif head == "decoder" and tail.split(".")[0].isdigit():
            state_dict[f"{prefix}decoder.layers.{tail}"] = state_dict.pop(key)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Layer-wise query decoder (UniAD).

Each decoder layer owns a learned query embedding (one vector per token position) and restarts its
residual stream from it. The queries attend first to the encoder output, then to the previous layer's
output, then pass a feed-forward block; there is no attention among the queries. Earlier layers therefore
reach a layer only as keys and values of its second attention, which the paper motivates as
"intensifying the use of the query embedding" against the identical shortcut.
"""

from __future__ import annotations

import torch
from torch import nn

from anomalib_hvq.models.components.transformer import TransformerDecoderLayer


class LayerWiseQueryDecoder(nn.Module):
    """Stack of post-norm decoder layers with one learned query table per layer, then a LayerNorm.

    Args:
        num_queries: Tokens per image ``L`` (``h * w``).
        dim: Token width.
        num_heads: Attention heads.
        hidden_dim: Feed-forward width.
        num_layers: Decoder layers (each with its own query table).
        dropout: Dropout of attention weights and residual branches.

    """

    def __init__(
        self, num_queries: int, dim: int, num_heads: int, hidden_dim: int, num_layers: int, dropout: float = 0.1
    ) -> None:
        super().__init__()
        # nn.Embedding's N(0, 1) initialisation, as in the official code.
        self.queries = nn.ModuleList(nn.Embedding(num_queries, dim) for _ in range(num_layers))
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(dim, num_heads, hidden_dim, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, encoded: torch.Tensor, pos: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the encoder output.

        Args:
            encoded: Encoder output, ``(B, L, dim)``; also the "previous output" of the first layer.
            pos: Positional embedding added to queries and keys, ``(L, dim)``.
            attn_mask: ``(L, L)`` bool mask (``True`` = forbidden) used in both attentions of every layer.

        Returns:
            Decoded tokens, ``(B, L, dim)``.

        """
        output = encoded
        for queries, layer in zip(self.queries, self.layers, strict=True):
            state = queries.weight.unsqueeze(0).expand(encoded.shape[0], -1, -1)
            output = layer(state, output, pos, attn_mask, first_memory=encoded)
        return self.norm(output)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Post-norm transformer layers with positional embeddings on queries and keys (DETR style).

UniAD and HVQ-Trans share these: the positional embedding is added to queries and keys but not to
values, and every sub-layer is followed by residual addition and LayerNorm. Attention weights are
never returned (``need_weights=False``), which lets PyTorch use its fused attention kernels
(flash / memory-efficient attention on GPUs).
"""

from __future__ import annotations

import torch
from torch import nn


class FeedForward(nn.Module):
    """Two-layer ReLU MLP with dropout, shape-preserving on ``(B, L, dim)``."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to ``(B, L, dim)`` tokens."""
        return self.net(x)


class TransformerEncoderLayer(nn.Module):
    """Post-norm self-attention + FFN layer on ``(B, L, dim)`` tokens."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(dim, hidden_dim, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode ``x`` ``(B, L, dim)`` with positional embedding ``pos`` ``(L, dim)``."""
        query = x + pos
        x = self.norm1(x + self.dropout1(self.self_attn(query, query, x, attn_mask=attn_mask, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class TransformerEncoder(nn.Module):
    """Stack of encoder layers that returns the input tokens and every layer's output."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, num_layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(dim, num_heads, hidden_dim, dropout) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, pos: torch.Tensor, attn_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Return ``[x, layer_1(x), ..., layer_N(...)]``, each ``(B, L, dim)``."""
        outputs = [x]
        for layer in self.layers:
            outputs.append(layer(outputs[-1], pos, attn_mask))
        return outputs


class TransformerDecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, cross-attention to a memory, FFN."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(dim, hidden_dim, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        first_memory: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode state ``x`` ``(B, L, dim)`` attending to ``memory`` ``(B, L, dim)``.

        ``first_memory`` ``(B, L, dim)``, if given, is what the first attention attends to instead of
        ``x`` itself (UniAD's layer-wise query decoder attends to the encoder output there).
        """
        context = x if first_memory is None else first_memory
        attended = self.self_attn(x + pos, context + pos, context, attn_mask=attn_mask, need_weights=False)[0]
        x = self.norm1(x + self.dropout1(attended))
        attended = self.cross_attn(x + pos, memory + pos, memory, attn_mask=attn_mask, need_weights=False)[0]
        x = self.norm2(x + self.dropout2(attended))
        return self.norm3(x + self.dropout3(self.ffn(x)))

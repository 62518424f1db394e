# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Learned 2-D positional embedding (DETR style), shared by UniAD and HVQ-Trans."""

from __future__ import annotations

import torch
from torch import nn


class LearnedPositionalEmbedding2d(nn.Module):
    """Row and column embedding tables whose entries are concatenated per grid position.

    Args:
        grid_size: ``(H, W)`` of the token grid.
        dim: Embedding size; half comes from the column table, half from the row table.

    """

    def __init__(self, grid_size: tuple[int, int], dim: int) -> None:
        super().__init__()
        if dim % 2:
            msg = f"Positional embedding size must be even, got {dim}."
            raise ValueError(msg)
        self.grid_size = tuple(grid_size)
        self.row_embed = nn.Embedding(grid_size[0], dim // 2)
        self.col_embed = nn.Embedding(grid_size[1], dim // 2)
        # The reference implementation draws both tables from U[0, 1).
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def forward(self) -> torch.Tensor:
        """Return the embedding of every position in row-major ``(h w)`` order, shape ``(H*W, dim)``."""
        height, width = self.grid_size
        cols = self.col_embed.weight.unsqueeze(0).expand(height, width, -1)
        rows = self.row_embed.weight.unsqueeze(1).expand(height, width, -1)
        return torch.cat([cols, rows], dim=-1).flatten(0, 1)

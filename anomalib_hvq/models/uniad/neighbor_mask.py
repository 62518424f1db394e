# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Neighbour-masked attention (UniAD): a token may not look at its own neighbourhood.

Without a mask, a reconstruction transformer learns the "identical shortcut" (copy each token to its
output) and reconstructs anomalies as well as normal regions. UniAD forbids every query to attend to
the keys in a window around its own position, the position itself included, so each token must be
predicted from its surroundings.
"""

from __future__ import annotations

import torch


def neighbor_mask(feature_size: tuple[int, int], neighbor_size: tuple[int, int]) -> torch.Tensor:
    """Boolean attention mask that blocks each query's neighbourhood.

    The window of query ``(y, x)`` holds the keys ``(y', x')`` with ``|y' - y| <= nh // 2`` and
    ``|x' - x| <= nw // 2`` (clipped at the borders), as in the official code. Tokens are in row-major
    ``(h w)`` order.

    Args:
        feature_size: ``(h, w)`` of the token grid.
        neighbor_size: ``(nh, nw)`` of the window (7x7 at a 14x14 grid in the paper: half the grid).

    Returns:
        ``(h*w, h*w)`` bool mask, ``True`` = attention forbidden (PyTorch's ``attn_mask`` convention).

    Raises:
        ValueError: If the window hides every key from some query (its softmax would be NaN).

    """
    height, width = feature_size
    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    near_rows = (rows[:, None] - rows[None, :]).abs() <= neighbor_size[0] // 2
    near_cols = (cols[:, None] - cols[None, :]).abs() <= neighbor_size[1] // 2
    mask = near_rows & near_cols
    if mask.all(dim=1).any():
        msg = (
            f"A {tuple(neighbor_size)} neighbour window hides every token of the {tuple(feature_size)} grid "
            "from some query. Use a window of about half the grid size (the paper: 7x7 at 14x14)."
        )
        raise ValueError(msg)
    return mask

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Neighbour mask: polarity, window, counts and its effect on attention."""

import pytest
import torch

from anomalib_hvq.models.components.transformer import TransformerEncoderLayer
from anomalib_hvq.models.uniad.neighbor_mask import neighbor_mask


def test_official_mask_blocks_the_7x7_window_including_the_query_itself() -> None:
    mask = neighbor_mask((14, 14), (7, 7))
    assert mask.shape == (196, 196) and mask.dtype == torch.bool
    assert mask.diagonal().all()  # the token never sees itself
    assert torch.equal(mask, mask.T)
    blocked = mask.sum(dim=1)
    # 4x4 at a corner, 7x7 inside, 37.7 on average (the spec's analytic counts).
    assert blocked[0] == 16 and blocked[7 * 14 + 7] == 49
    assert blocked.float().mean().item() == pytest.approx(37.73, abs=0.01)
    corner = mask[0].view(14, 14)
    assert corner[:4, :4].all() and corner.sum() == 16


def test_window_is_clipped_and_even_sizes_use_half_the_size_as_radius() -> None:
    mask = neighbor_mask((5, 6), (3, 3)).view(5, 6, 5, 6)
    expected = torch.zeros(5, 6, dtype=torch.bool)
    expected[1:4, 2:5] = True
    assert torch.equal(mask[2, 3], expected)
    # As the official code: an 8x8 window reaches 4 tokens on each side.
    assert neighbor_mask((16, 16), (8, 8)).view(16, 16, 16, 16)[8, 8].sum() == 81


def test_window_hiding_every_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="hides every token"):
        neighbor_mask((4, 4), (7, 7))


def test_masked_keys_do_not_influence_the_query() -> None:
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(dim=8, num_heads=2, hidden_dim=16, dropout=0.0).eval()
    mask = neighbor_mask((5, 5), (3, 3))
    pos = torch.randn(25, 8)
    tokens = torch.randn(1, 25, 8)
    query, neighbour, far = 12, 13, 0  # centre, its right neighbour, a corner outside its window
    assert mask[query, neighbour] and not mask[query, far]
    base = layer(tokens, pos, mask)
    moved_neighbour, moved_far = tokens.clone(), tokens.clone()
    moved_neighbour[0, neighbour] += 5.0
    moved_far[0, far] += 5.0
    torch.testing.assert_close(layer(moved_neighbour, pos, mask)[0, query], base[0, query])
    assert not torch.allclose(layer(moved_far, pos, mask)[0, query], base[0, query])
    # Without the mask the neighbour does reach the query.
    assert not torch.allclose(layer(moved_neighbour, pos)[0, query], layer(tokens, pos)[0, query])

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""OT prototype score."""

import math

import torch

from anomalib_hvq.models.hvq_trans.ot_score import ot_score


def test_ot_score_matches_hand_computation() -> None:
    tokens = torch.tensor([[[1.0, 0.0]]])
    prototypes = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
    # logits / T=1: [2, 0]; cos: [1, 0] -> OT = softmax_1 * 1 = 1 / (1 + e^2).
    expected = 1 / (1 + math.exp(2.0))
    torch.testing.assert_close(ot_score(tokens, prototypes, temperature=1.0), torch.tensor([[expected]]))


def test_temperature_flattens_the_assignment() -> None:
    tokens = torch.tensor([[[1.0, 0.0]]])
    prototypes = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
    # A huge temperature gives uniform weights: mean cosine distance (0 + 1) / 2.
    torch.testing.assert_close(ot_score(tokens, prototypes, temperature=1e9), torch.tensor([[0.5]]))


def test_ot_score_is_finite_for_huge_features() -> None:
    tokens = torch.full((2, 3, 8), 1e4)
    prototypes = torch.randn(2, 16, 8) * 1e4
    score = ot_score(tokens, prototypes, temperature=16.0)
    assert torch.isfinite(score).all()
    assert (score >= 0).all() and (score <= 2).all()

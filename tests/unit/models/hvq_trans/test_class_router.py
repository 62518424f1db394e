# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Label-free centroid router."""

import torch

from anomalib_hvq.models.hvq_trans.class_router import CentroidRouter


def test_router_picks_the_class_of_separable_features() -> None:
    torch.manual_seed(0)
    directions = torch.eye(3, 16) * 5
    labels = torch.randint(0, 3, (60,))
    features = directions[labels] + torch.randn(60, 16) * 0.5
    router = CentroidRouter(num_classes=3, dim=16)
    router.update(features[:30], labels[:30])
    assert torch.equal(router(features[30:]), labels[30:])


def test_unseen_classes_are_never_chosen() -> None:
    router = CentroidRouter(num_classes=3, dim=2)
    router.update(torch.tensor([[1.0, 0.0]]), torch.tensor([2]))
    assert router(torch.tensor([[0.0, 1.0], [-1.0, 0.0]])).tolist() == [2, 2]

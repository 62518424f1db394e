# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""k-means with k-means++ seeding, batched over classes."""

import torch

from anomalib_hvq.models.hvq_trans.kmeans import first_per_class, group_by_class, kmeans


def clustered_tokens(centres: torch.Tensor, per_centre: int, spread: float, seed: int = 0) -> torch.Tensor:
    """``per_centre`` points around each of ``centres`` ``(N, D)``, shuffled: ``(N * per_centre, D)``."""
    generator = torch.Generator().manual_seed(seed)
    points = centres.repeat_interleave(per_centre, 0)
    points = points + spread * torch.randn(points.shape, generator=generator)
    return points[torch.randperm(len(points), generator=generator)]


def test_group_by_class_pads_each_class_into_one_row():
    tokens = torch.arange(5 * 2 * 1, dtype=torch.float).view(5, 2, 1)  # sample b holds tokens 2b, 2b+1
    class_index = torch.tensor([1, 0, 1, 1, 0])
    grouped, valid = group_by_class(tokens, class_index, num_classes=3)
    assert grouped.shape == (3, 6, 1)
    assert grouped[0, valid[0]].flatten().tolist() == [2, 3, 8, 9]
    assert grouped[1, valid[1]].flatten().tolist() == [0, 1, 4, 5, 6, 7]
    assert not valid[2].any()


def test_kmeans_finds_the_cluster_centres_of_every_class():
    torch.manual_seed(0)
    centres = torch.randn(2, 4, 8) * 10  # 2 classes, 4 well-separated clusters each
    points = torch.stack([clustered_tokens(c, 50, 0.1, seed=i) for i, c in enumerate(centres)])
    valid = torch.ones(points.shape[:2], dtype=torch.bool)
    found, counts = kmeans(points, valid, num_centres=4, iterations=5, generator=torch.Generator().manual_seed(0))
    for cls in range(2):
        # Every true centre has a found centre next to it (order is arbitrary).
        distance = torch.cdist(centres[cls], found[cls])
        assert distance.min(1).values.max() < 0.1
    assert counts.tolist() == [[50.0] * 4, [50.0] * 4]


def test_kmeans_ignores_padding_and_survives_fewer_points_than_centres():
    points = torch.zeros(2, 6, 3)
    points[0, :2] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])  # class 0: 2 real points, 4 padding zeros
    points[1] = torch.randn(6, 3)
    valid = torch.zeros(2, 6, dtype=torch.bool)
    valid[0, :2] = True
    valid[1] = True
    found, counts = kmeans(points, valid, num_centres=3, iterations=3)
    # Class 0's centres are its real points only, never the padding at the origin.
    assert torch.cdist(found[0], points[0, :2]).min(1).values.max() == 0
    assert counts[0].sum() == 2
    assert counts[1].sum() == 6


def test_first_per_class_keeps_the_earliest_samples_of_each_class() -> None:
    # Class 0 already has one sample taken, so only its first sample here fits a limit of 2; class 1 has room.
    keep = first_per_class(torch.tensor([0, 1, 0, 0, 1]), taken=torch.tensor([1, 0]), limit=2)
    assert keep.tolist() == [True, True, False, False, True]

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The fast codebook recipe: k-means initialisation and dead-code revival (both off by default)."""

import pytest
import torch

from anomalib_hvq.models.hvq_trans.codebook_recipe import CodebookRecipe
from anomalib_hvq.models.hvq_trans.ema_codebook import EMAVectorQuantizer
from anomalib_hvq.models.hvq_trans.hierarchical_quantizer import HierarchicalQuantizer

# Two classes with three tight, far-apart clusters each, in 4-d.
CENTRES = torch.tensor(
    [
        [[20.0, 0, 0, 0], [0, 20.0, 0, 0], [0, 0, 20.0, 0]],
        [[-20.0, 0, 0, 0], [0, -20.0, 0, 0], [0, 0, 0, 20.0]],
    ]
)


def clustered_batch(samples_per_class: int = 3, tokens: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``(B, L, 4)`` whose sample ``b`` draws from its class's clusters; classes ``(B,)`` alternate."""
    generator = torch.Generator().manual_seed(seed)
    class_index = torch.arange(2 * samples_per_class) % 2
    which = torch.arange(tokens) % 3  # every sample has tokens of all three clusters
    x = CENTRES[class_index][:, which] + 0.05 * torch.randn(len(class_index), tokens, 4, generator=generator)
    return x, class_index


def nearest_distance(codebook: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Distance from each centre ``(N, D)`` to its nearest code ``(M, D)``."""
    return torch.cdist(centres, codebook).min(1).values


def test_kmeans_init_puts_every_class_codes_at_its_clusters():
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(num_classes=2, dim=4, num_codes=3)
    x, class_index = clustered_batch()
    # N(0, 1) codes (the official init) are nowhere near the data.
    assert nearest_distance(quantizer.embed[0], CENTRES[0]).min() > 10
    quantized = quantizer.kmeans_init(x, class_index, iterations=5)
    for cls in range(2):
        assert nearest_distance(quantizer.embed[cls], CENTRES[cls]).max() < 0.1
    # EMA statistics continue from the clusters: 30 tokens per sample, 10 per cluster.
    torch.testing.assert_close(quantizer.cluster_size, torch.full((2, 3), 10.0))
    torch.testing.assert_close(quantizer.embed_avg, quantizer.embed * 10)
    # The returned tokens are quantized by the new codes.
    assert (quantized - x).abs().max() < 0.5


def test_kmeans_init_leaves_absent_classes_alone():
    quantizer = EMAVectorQuantizer(num_classes=3, dim=4, num_codes=3)
    before = quantizer.embed[2].clone()
    x, class_index = clustered_batch()
    quantizer.kmeans_init(x, class_index)
    torch.testing.assert_close(quantizer.embed[2], before)


def test_hierarchical_kmeans_init_clusters_what_each_level_will_see():
    torch.manual_seed(0)
    quantizer = HierarchicalQuantizer(num_classes=2, dim=4, num_lower=1, num_codes=3)
    x, class_index = clustered_batch()
    quantizer.kmeans_init([x, x], class_index, iterations=5)
    # The lower level quantizes concat(E_0, Q_top); here Q_top is (close to) E_0's own cluster centre.
    lower_targets = torch.cat([CENTRES, CENTRES], dim=-1)
    for cls in range(2):
        assert nearest_distance(quantizer.lower[0].embed[cls], lower_targets[cls]).max() < 0.1


FAR = torch.tensor([500.0, 500, 500, 500])


def with_a_dead_code(revive_after: int) -> tuple[EMAVectorQuantizer, torch.Tensor, torch.Tensor]:
    """A quantizer fitted to ``clustered_batch()`` (returned too) whose code 3 of class 0 no token ever picks."""
    quantizer = EMAVectorQuantizer(num_classes=2, dim=4, num_codes=4, decay=0.9, revive_after=revive_after)
    x, class_index = clustered_batch()
    quantizer.kmeans_init(x, class_index, iterations=5)
    quantizer.embed[0, 3] = FAR
    quantizer.cluster_size[0, 3] = 7.0
    quantizer.embed_avg[0, 3] = FAR * 7
    return quantizer, x, class_index


def test_a_dead_code_is_revived_from_its_class_tokens_with_reset_statistics():
    torch.manual_seed(0)
    quantizer, x, class_index = with_a_dead_code(revive_after=2)
    class1_before = quantizer.embed[1].clone()
    quantizer.train()
    quantizer(x, class_index)
    torch.testing.assert_close(quantizer.embed[0, 3], FAR, rtol=1e-3, atol=0)  # idle for one step only
    assert quantizer.revived == 0
    quantizer(x, class_index)
    revived = quantizer.embed[0, 3]
    # Re-seeded at one of class 0's tokens of this batch, with its EMA statistics those of that one token.
    class0_tokens = x[class_index == 0].reshape(-1, 4)
    assert (class0_tokens - revived).abs().sum(-1).min() == 0
    assert quantizer.cluster_size[0, 3] == 1.0
    torch.testing.assert_close(quantizer.embed_avg[0, 3], revived)
    assert quantizer.idle_steps[0, 3] == 0
    assert quantizer.revived >= 1
    # Class 1's codebook only moved by its own EMA (no code of it was far from its data).
    assert nearest_distance(quantizer.embed[1], class1_before).max() < 0.5


def test_without_revival_a_dead_code_stays_dead():
    quantizer, x, class_index = with_a_dead_code(revive_after=0)
    quantizer.train()
    for _ in range(5):
        quantizer(x, class_index)
    torch.testing.assert_close(quantizer.embed[0, 3], FAR, rtol=1e-3, atol=0)  # only Laplace smoothing moves it


def test_revival_state_is_not_saved_in_checkpoints():
    quantizer = EMAVectorQuantizer(num_classes=2, dim=4, num_codes=4, revive_after=2)
    assert set(quantizer.state_dict()) == {"embed", "cluster_size", "embed_avg"}


@pytest.mark.parametrize("arguments", [{"kmeans_iterations": -1}, {"kmeans_images_per_class": 0}, {"revive_after": -3}])
def test_invalid_recipe_is_rejected(arguments):
    with pytest.raises(ValueError, match="Invalid CodebookRecipe"):
        CodebookRecipe(**arguments)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Feature jitter: training only, noise scaled to the token norm / C, clean reconstruction target."""

import pytest
import torch
from tiny_uniad import TINY
from torch.nn import functional as F

from anomalib_hvq.models.uniad.feature_jitter import FeatureJitter
from anomalib_hvq.models.uniad.torch_model import UniADModel


def test_no_jitter_in_eval_mode() -> None:
    tokens = torch.randn(2, 10, 272)
    jitter = FeatureJitter().eval()
    assert torch.equal(jitter(tokens), tokens)


def test_noise_std_is_scale_times_token_norm_over_channels() -> None:
    torch.manual_seed(0)
    tokens = torch.randn(4, 196, 272) * torch.linspace(0.1, 10, 196).view(1, -1, 1)
    noise = FeatureJitter(scale=20.0).train()(tokens) - tokens
    sigma = 20.0 * tokens.norm(dim=-1) / 272
    standardized = noise / sigma.unsqueeze(-1)
    assert standardized.mean().abs() < 0.01
    assert standardized.std().item() == pytest.approx(1.0, abs=0.01)
    # Larger than the signal: noise norm ~ 20 / sqrt(272) = 1.21 x token norm.
    ratio = (noise.norm(dim=-1) / tokens.norm(dim=-1)).mean()
    assert ratio.item() == pytest.approx(20 / 272**0.5, rel=0.02)


def test_zero_tokens_stay_zero_and_switches_disable_it() -> None:
    zeros = torch.zeros(1, 3, 8)
    assert torch.equal(FeatureJitter().train()(zeros), zeros)
    tokens = torch.randn(1, 3, 8)
    assert torch.equal(FeatureJitter(scale=0.0).train()(tokens), tokens)
    assert torch.equal(FeatureJitter(prob=0.0).train()(tokens), tokens)
    with pytest.raises(ValueError, match="scale"):
        FeatureJitter(prob=1.5)


def test_model_jitters_only_in_training_and_keeps_the_target_clean() -> None:
    torch.manual_seed(0)
    model = UniADModel(**{**TINY, "dropout": 0.0})
    images = torch.randn(2, 3, 64, 64)
    features = model.feature_extractor(images)
    model.eval()
    torch.testing.assert_close(model.reconstruct(features), model.reconstruct(features))
    model.train()
    assert not torch.allclose(model.reconstruct(features), model.reconstruct(features))
    torch.manual_seed(1)
    loss = model(images)
    torch.manual_seed(1)
    torch.testing.assert_close(loss, F.mse_loss(model.reconstruct(features), features))

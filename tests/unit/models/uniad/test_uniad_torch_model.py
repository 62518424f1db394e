# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""UniAD torch model: shapes, loss, map, initialisation, parameter count, export."""

import pytest
import torch
from anomalib.data import InferenceBatch
from dynamic_batch_export import assert_exports_with_dynamic_batch
from tiny_uniad import TINY
from torch import nn
from torch.nn import functional as F

from anomalib_hvq.models.uniad.torch_model import UniADModel


@pytest.fixture
def model() -> UniADModel:
    torch.manual_seed(0)
    return UniADModel(**TINY)


def test_shapes_through_every_stage(model: UniADModel) -> None:
    model.eval()
    images = torch.randn(3, 3, 64, 64)
    features = model.feature_extractor(images)
    assert features.shape == (3, 192, 4, 4)
    tokens = model.input_proj(features.flatten(2).transpose(1, 2))
    encoded = model.encoder(tokens, model.pos_embed(), model.attn_mask)
    assert [e.shape for e in encoded] == [(3, 16, 16)] * 3
    assert model.decoder(encoded[-1], model.pos_embed(), model.attn_mask).shape == (3, 16, 16)
    assert model.reconstruct(features).shape == features.shape
    output = model(images)
    assert isinstance(output, InferenceBatch)
    assert output.pred_score.shape == (3,)
    assert output.anomaly_map.shape == (3, 1, 64, 64)


def test_map_is_the_upsampled_l2_reconstruction_error_and_score_its_pooled_max(model: UniADModel) -> None:
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    output = model(images)
    features = model.feature_extractor(images)
    error = (model.reconstruct(features) - features).pow(2).sum(1, keepdim=True).sqrt()
    expected = F.interpolate(error, size=(64, 64), mode="bilinear", align_corners=True)
    torch.testing.assert_close(output.anomaly_map, expected)
    torch.testing.assert_close(output.pred_score, F.avg_pool2d(expected, 16, stride=1).amax(dim=(1, 2, 3)))


def test_training_returns_mse_and_trains_everything_but_the_backbone(model: UniADModel) -> None:
    model.train()
    loss = model(torch.randn(2, 3, 64, 64))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.input_proj.weight.grad.abs().sum() > 0
    assert model.encoder.layers[0].self_attn.in_proj_weight.grad.abs().sum() > 0
    assert model.decoder.queries[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.feature_extractor.parameters())
    assert not model.feature_extractor.backbone.training  # UniAD: frozen backbone in eval mode


def test_every_image_is_scored_on_its_own(model: UniADModel) -> None:
    model.eval()
    images = torch.randn(3, 3, 64, 64)
    together = model(images)
    alone = model(images[1:2])
    torch.testing.assert_close(alone.anomaly_map[0], together.anomaly_map[1], rtol=1e-4, atol=1e-4)


def test_linear_layers_are_xavier_initialised_with_zero_bias(model: UniADModel) -> None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    # input/output projections, per layer: attention output projections and two FFN layers.
    assert len(linears) == 2 + 2 * 3 + 2 * 4
    for layer in linears:
        assert torch.count_nonzero(layer.bias) == 0
        bound = (6 / (layer.in_features + layer.out_features)) ** 0.5
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.8 * bound  # uniform over the whole range, not N(0, 0.01)


def test_mask_is_a_buffer_that_can_be_switched_off() -> None:
    masked = UniADModel(**TINY)
    assert masked.attn_mask.shape == (16, 16) and "attn_mask" not in masked.state_dict()
    unmasked = UniADModel(**{**TINY, "neighbor_size": None}).eval()
    assert unmasked.attn_mask is None
    assert unmasked(torch.randn(1, 3, 64, 64)).pred_score.shape == (1,)
    with pytest.raises(ValueError, match="hides every token"):
        UniADModel(**{**TINY, "neighbor_size": (7, 7)})


def test_torch_export_with_dynamic_batch(model: UniADModel) -> None:
    assert_exports_with_dynamic_batch(model)


def test_official_dimensions_give_the_official_parameter_count() -> None:
    model = UniADModel(backbone="tf_efficientnet_b4", pre_trained=False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert model.feature_extractor.num_channels == 272
    assert trainable == 7_717_392  # the spec's analytic count of the official model
    assert sum(q.weight.numel() for q in model.decoder.queries) == 4 * 196 * 256

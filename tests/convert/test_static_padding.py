# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Static TF-"same" padding for a design resolution (the official lukemelas EfficientNet-B4 behaviour)."""

import math

import pytest
import timm
import torch

from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor
from anomalib_hvq.models.components.static_padding import StaticSamePadConv2d, apply_static_same_padding


def _tf_same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "same" padding (before, after) of one axis, as the lukemelas code computes it."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@pytest.fixture(scope="module")
def b4_pair() -> tuple[MultiScaleFeatureExtractor, MultiScaleFeatureExtractor]:
    torch.manual_seed(0)
    dynamic = MultiScaleFeatureExtractor("tf_efficientnet_b4", pre_trained=False)
    static = MultiScaleFeatureExtractor("tf_efficientnet_b4", pre_trained=False, static_padding_size=380)
    static.load_state_dict(dynamic.state_dict())
    return dynamic, static


def test_paddings_are_those_of_the_380px_network(b4_pair) -> None:
    _, static = b4_pair
    convs = {n: m for n, m in static.backbone.named_modules() if isinstance(m, StaticSamePadConv2d)}
    # Inputs at 380 px: stem 380, stage 2 at 190, stage 3 at 95, stage 4 at 48 (strided 3/3/5/3 convs).
    expected_inputs = {"conv_stem": 380, "blocks.1.0.conv_dw": 190, "blocks.2.0.conv_dw": 95, "blocks.3.0.conv_dw": 48}
    assert set(convs) == set(expected_inputs)
    for name, size in expected_inputs.items():
        conv = convs[name]
        along = _tf_same(size, conv.kernel_size[0], conv.stride[0])
        assert conv.static_padding == along + along, name
    # The one that differs from dynamic padding at 224 px (56 -> 28): (2, 2) instead of (1, 2).
    assert convs["blocks.2.0.conv_dw"].static_padding == (2, 2, 2, 2)
    assert _tf_same(56, 5, 2) == (1, 2)


def test_weights_and_keys_are_shared_and_only_stride_8_and_16_features_move(b4_pair) -> None:
    dynamic, static = b4_pair
    assert list(static.state_dict()) == list(dynamic.state_dict())
    conv = static.backbone.blocks[2][0].conv_dw
    assert isinstance(conv, StaticSamePadConv2d) and conv.weight.requires_grad is False
    # 128 px: like at 224 px, only the 5x5 stride-2 convolution (32 -> 16 here) pads differently.
    images = torch.randn(1, 3, 128, 128)
    a, b = dynamic(images), static(images)
    torch.testing.assert_close(a[:, :56], b[:, :56])  # strides 2 and 4: same padding
    assert not torch.allclose(a[:, 56:], b[:, 56:])  # strides 8 and 16: shifted by one pixel


def test_static_padding_for_the_input_size_equals_dynamic_padding() -> None:
    torch.manual_seed(0)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True).eval()
    images = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        reference = net(images)
        paddings = apply_static_same_padding(net, 96)
        padded = net(images)
    assert paddings and all(isinstance(net.get_submodule(n), StaticSamePadConv2d) for n in paddings)
    for x, y in zip(reference, padded, strict=True):
        torch.testing.assert_close(x, y)


def test_default_extractor_keeps_dynamic_padding() -> None:
    extractor = MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False)
    assert not any(isinstance(m, StaticSamePadConv2d) for m in extractor.modules())

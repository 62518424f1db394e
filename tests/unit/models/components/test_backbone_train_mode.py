# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""backbone_train_mode=True acts as the official lukemelas EfficientNet in train mode: BN momentum, drop-connect."""

import pytest
import torch
from timm.layers import DropPath
from torch import nn

from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor

# EfficientNet-Lite0 has 16 blocks; the stride-16 tap ends its fifth stage, so 1 + 2 + 2 + 3 + 3 = 11 are kept.
LITE0_BLOCKS, KEPT_BLOCKS = 16, 11


def extractor(train_mode: bool) -> MultiScaleFeatureExtractor:
    torch.manual_seed(0)
    return MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False, train_mode=train_mode)


def images() -> torch.Tensor:
    return torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_running_statistics_move_by_the_official_momentum_after_one_train_forward() -> None:
    model = extractor(train_mode=True).train()
    norm = model.backbone.bn1  # the stem's BatchNorm, first to see the batch
    seen = {}
    norm.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0].detach()))
    mean, var = norm.running_mean.clone(), norm.running_var.clone()
    model(images())
    # PyTorch convention: new = (1 - m) * old + m * batch statistic, with the official m = 1 - 0.99.
    torch.testing.assert_close(norm.running_mean, 0.99 * mean + 0.01 * seen["x"].mean(dim=(0, 2, 3)))
    torch.testing.assert_close(norm.running_var, 0.99 * var + 0.01 * seen["x"].var(dim=(0, 2, 3), unbiased=True))
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.01 for m in norms)


def test_drop_connect_rates_follow_the_block_index_and_apply_in_train_mode_only() -> None:
    model = extractor(train_mode=True)
    blocks = [block for stage in model.backbone.blocks for block in stage]
    rates = [block.drop_path.drop_prob if isinstance(block.drop_path, DropPath) else 0.0 for block in blocks]
    assert rates == pytest.approx([0.2 * index / LITE0_BLOCKS for index in range(KEPT_BLOCKS)])

    model.train()
    torch.manual_seed(2)
    first = model(images())
    torch.manual_seed(3)
    second = model(images())
    assert not torch.allclose(first, second)  # other random blocks dropped: drop-connect is active

    # In eval mode nothing is dropped: the features equal those of the default extractor with the same weights.
    reference = extractor(train_mode=False)
    reference.load_state_dict(model.state_dict())
    model.eval()
    torch.manual_seed(4)
    torch.testing.assert_close(model(images()), reference(images()))


def test_default_backbone_has_no_drop_connect_and_keeps_its_running_statistics() -> None:
    model = extractor(train_mode=False).train()  # train() keeps the frozen backbone in eval mode
    assert not any(isinstance(m, DropPath) for m in model.modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model(images())
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[name])

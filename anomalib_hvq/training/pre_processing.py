# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Pre-processing shared by the feature-reconstruction models: resize and backbone normalisation."""

from __future__ import annotations

import timm
from anomalib.pre_processing import PreProcessor
from torchvision.transforms.v2 import Compose, Normalize, Resize

from .resize import AntialiasedPreProcessor

# ImageNet statistics, for backbones timm has no pretrained configuration for.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def backbone_pre_processor(backbone: str, image_size: tuple[int, int] | None = None) -> PreProcessor:
    """Resize to ``image_size`` (224x224, the papers' size, by default) and normalise for ``backbone``.

    The statistics are the ones the backbone's weights were trained with (ImageNet mean/std for
    EfficientNet-B4, 0.5/0.5 for EfficientNet-Lite), read from timm. No centre crop: the papers resize
    the whole image. The resize is antialiased in training, testing and exported models alike (anomalib's
    own pre-processor drops antialiasing on export).

    Args:
        backbone: timm model name.
        image_size: ``(H, W)`` after resizing.

    Returns:
        A pre-processor whose transform maps ``(B, 3, h, w)`` images in ``[0, 1]`` to ``(B, 3, H, W)``.

    """
    config = timm.get_pretrained_cfg(backbone)
    mean = config.mean if config is not None else IMAGENET_MEAN
    std = config.std if config is not None else IMAGENET_STD
    resize = Resize(image_size or (224, 224), antialias=True)
    return AntialiasedPreProcessor(transform=Compose([resize, Normalize(mean=list(mean), std=list(std))]))

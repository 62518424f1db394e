# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Antialiased bilinear resize that exports to ONNX and OpenVINO.

anomalib's exported pre-processor drops antialiasing (``disable_antialiasing``) while training and
testing resize with it, so an exported model sees different pixels than the model was trained on
as soon as images are larger than the model input (MVTec AD images are 700-1024 px). ONNX's
``Resize(antialias=1)`` is exact in ONNX Runtime but OpenVINO ignores the attribute. This module
writes the same filter as torch's ``interpolate(mode="bilinear", antialias=True)`` (PIL's triangle
filter stretched by the scale factor) as two matrix products whose weights are computed in the
graph from the input size, so every runtime computes it, for any input size.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from anomalib.pre_processing import PreProcessor
from anomalib.pre_processing.utils.transform import convert_center_crop_transform, get_exportable_transform
from torchvision.transforms.v2 import Compose, Resize, Transform


def antialias_weights(reference: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """Row-normalised bilinear antialias weights ``(out_size, in_size)``, as torch/PIL compute them.

    With ``scale = in / out`` and ``support = max(scale, 1)``, output pixel ``i`` weighs input pixel
    ``j`` by ``max(0, 1 - |(j + 0.5) - (i + 0.5) * scale| / support)``, normalised over ``j``.
    Multiplied by ``2 * max(in, out)`` this is an integer, so it is computed in int64 and divided
    once at the end: OpenVINO runs float arithmetic in bf16 by default on CPUs that have it, where
    float pixel positions above 256 are no longer exact and the weights fall apart (NaN rows).
    ``in_size`` may be symbolic (an exported dimension); it enters as a tensor so that it stays in
    the graph instead of being frozen at the example input's size.
    """
    source = torch.arange(in_size, dtype=torch.int64, device=reference.device)
    target = torch.arange(out_size, dtype=torch.int64, device=reference.device)
    length = source[-1:] + 1  # in_size as a (1,) tensor
    offset = (2 * source + 1).unsqueeze(0) * out_size - (2 * target + 1).unsqueeze(1) * length
    window = 2 * length.clamp(min=out_size)
    weights = (window - offset.abs()).clamp(min=0)
    return weights.to(reference.dtype) / weights.sum(dim=1, keepdim=True).to(reference.dtype)


def resize_antialiased(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(..., H, W)`` float images to ``size`` like ``interpolate(bilinear, antialias=True)``."""
    rows = antialias_weights(images, images.shape[-2], size[0])
    cols = antialias_weights(images, images.shape[-1], size[1])
    # Width first, so the last product has its weights on the left: with static shapes OpenVINO turns a
    # trailing ``x @ constant`` into a fully connected layer and fuses the following per-channel Normalize
    # into it as if the width were channels, and the model then fails to compile.
    return rows @ (images @ cols.transpose(0, 1))


class ExportableAntialiasResize(Transform):
    """``Resize((h, w), antialias=True)`` for float image tensors, exportable to ONNX and OpenVINO.

    Args:
        size: Output ``(height, width)``.

    """

    def __init__(self, size: tuple[int, int] | list[int]) -> None:
        super().__init__()
        if len(size) != 2:
            msg = f"size must be (height, width), got {size}."
            raise ValueError(msg)
        self.size = (int(size[0]), int(size[1]))

    def transform(self, inpt: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Resize one tensor (torchvision >= 0.21 entry point)."""
        del params
        return resize_antialiased(inpt, self.size)

    def _transform(self, inpt: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Resize one tensor (older torchvision entry point)."""
        return self.transform(inpt, params)


def _is_exact_size(resize: Resize) -> bool:
    return isinstance(resize.size, list | tuple) and len(resize.size) == 2 and resize.max_size is None


def antialiased_export_transform(transform: Transform | None) -> Transform | None:
    """Return an exportable copy of ``transform`` that keeps antialiasing where the original resizes with it.

    ``Resize`` to an exact ``(h, w)`` with antialiasing becomes :class:`ExportableAntialiasResize`;
    anything else is converted as anomalib does (``get_exportable_transform``).
    """
    if transform is None:
        return None
    if isinstance(transform, Resize) and transform.antialias and _is_exact_size(transform):
        return ExportableAntialiasResize(transform.size)
    if isinstance(transform, Compose):
        return Compose([antialiased_export_transform(t) for t in transform.transforms])
    if isinstance(transform, Resize):
        return get_exportable_transform(transform)
    return convert_center_crop_transform(copy.deepcopy(transform))


class AntialiasedPreProcessor(PreProcessor):
    """anomalib ``PreProcessor`` whose exported transform resizes exactly like training and testing.

    ``transform`` (used in training, validation, testing and predict batches, and saved in checkpoints)
    is unchanged; only ``export_transform`` (``forward``: exported graphs, ``TorchInferencer``) differs
    from anomalib's, and is rebuilt after a checkpoint restores ``transform``.
    """

    def __init__(self, transform: Transform | None = None) -> None:
        super().__init__(transform=transform)
        self.export_transform = antialiased_export_transform(transform)

    def load_checkpoint_config(self, config: dict[str, Any]) -> None:
        """Restore ``transform`` from a checkpoint and rebuild the antialiased export transform."""
        super().load_checkpoint_config(config)
        self.export_transform = antialiased_export_transform(self.transform)

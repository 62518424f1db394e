# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""anomalib's inferencers with input checks that name the cause and the fix.

anomalib's ``OpenVINOInferencer`` hands any array to the runtime, which answers a wrong channel count or,
for a model exported with a fixed ``input_size``, a wrong image size with a C++ shape-check trace; its
``TorchInferencer`` fails inside the pre-processor's ``Normalize``. These subclasses check the batch
against the exported model's input first, and read files and PIL images with the project's
:func:`~anomalib_hvq.data.image_io.read_image` (any bit depth; errors name the file). Everything else
(model loading, outputs) is anomalib's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.data import ImageBatch, NumpyImageBatch
from anomalib.deploy import OpenVINOInferencer as _OpenVINOInferencer
from anomalib.deploy import TorchInferencer as _TorchInferencer
from PIL.Image import Image

from anomalib_hvq.data.image_io import read_image

RGB = 3
# Rounding slack around [0, 1] (e.g. after a resize) that is still a valid image.
PIXEL_TOLERANCE = 1e-3


def check_image_batch(shape: Sequence[int], expected: Sequence[int | None]) -> None:
    """Raise ``ValueError`` if a ``(B, C, H, W)`` batch does not fit a model input ``expected`` (``None``: any).

    A channels-last array whose channel count is wrong (``(B, H, W, 1|4)``) is reported by that count.
    """
    if len(shape) != len(expected):
        msg = f"Expected an image (C, H, W) or a batch (B, C, H, W), got an array of shape {tuple(shape)}."
        raise ValueError(msg)
    channels = shape[-1] if shape[1] != RGB and shape[-1] in (1, 4) else shape[1]
    if expected[1] is not None and channels != expected[1]:
        msg = (
            f"The image has {channels} channels but the model takes {expected[1]} (RGB). Convert it to RGB first, "
            "e.g. with anomalib_hvq.data.image_io.read_image, or pass the file or PIL image to predict (it converts)."
        )
        raise ValueError(msg)
    size, model_size = tuple(shape[2:]), tuple(expected[2:])
    if any(want is not None and got != want for got, want in zip(size, model_size, strict=True)):
        msg = (
            f"The image is {size[0]}x{size[1]} but this model was exported for {model_size[0]}x{model_size[1]} "
            f"images only (a fixed input_size). Resize the image to {model_size[0]}x{model_size[1]}, or export "
            "again without input_size: the exported model then resizes images of any size itself."
        )
        raise ValueError(msg)


def check_pixel_values(image: np.ndarray | torch.Tensor) -> None:
    """Raise ``ValueError`` for an image batch that is not float with finite values in ``[0, 1]``.

    The exported graph cannot refuse a NaN/inf pixel (the score would come back NaN) nor tell 0-255 data
    from an image; one pass over the pixels, small next to the network.
    """
    values = torch.as_tensor(image)
    if not values.is_floating_point():
        msg = f"The image has dtype {values.dtype}; pass float values in [0, 1] (divide 0-255 data by 255)."
        raise ValueError(msg)
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        msg = (
            f"The image holds {int((~finite).sum())} NaN or infinite value(s); its score would be NaN. Check how it "
            "was read or computed (files: anomalib_hvq.data.image_io.read_image)."
        )
        raise ValueError(msg)
    low, high = float(values.min()), float(values.max())
    if low < -PIXEL_TOLERANCE or high > 1 + PIXEL_TOLERANCE:
        msg = (
            f"The image's values lie in [{low:.4g}, {high:.4g}], not [0, 1]: pass RGB values scaled to [0, 1] "
            "(0-255 data divided by 255), not normalised ones; the exported model normalises them itself."
        )
        raise ValueError(msg)


def _existing(path: str | Path) -> Path:
    if not Path(path).is_file():
        msg = (
            f"No exported model at {path}. Export one first, e.g. `anomalib export --model anomalib_hvq.HVQTrans "
            "--ckpt_path <model.ckpt> --export_type openvino`, and pass the written file (weights/openvino/model.xml "
            "or weights/torch/model.pt)."
        )
        raise FileNotFoundError(msg)
    return Path(path)


class OpenVINOInferencer(_OpenVINOInferencer):
    """anomalib's ``OpenVINOInferencer`` computing in float32 by default, with an input-shape check per image.

    OpenVINO computes in bf16 by default on CPUs with AVX512-BF16 or AMX, which moves this model's anomaly
    map far from PyTorch's (see the README's export parity table), and it ignores a precision hint stored
    in the model file (its CPU plugin applies only KV-cache and quantization options from ``rt_info``).
    So the hint is passed at compile time here.

    Args:
        path: ``.xml`` (with its ``.bin``) or ``.onnx`` file, or the ``(xml, bin)`` bytes.
        device: OpenVINO device (``"AUTO"``, ``"CPU"``, ``"GPU"``, ...).
        config: OpenVINO properties; an ``INFERENCE_PRECISION_HINT`` here overrides ``precision``.
        precision: ``INFERENCE_PRECISION_HINT``: ``"f32"`` (default, matches PyTorch), ``"bf16"`` (faster on
            CPUs that have it, less accurate), or ``None`` for the device's own default.

    """

    def __init__(
        self,
        path: str | Path | tuple[bytes, bytes],
        device: str | None = "AUTO",
        config: dict | None = None,
        precision: str | None = "f32",
    ) -> None:
        config = {**({"INFERENCE_PRECISION_HINT": precision} if precision else {}), **(config or {})}
        super().__init__(path if isinstance(path, tuple) else _existing(path), device, config or None)

    def predict(self, image: str | Path | np.ndarray | Image | torch.Tensor) -> NumpyImageBatch:
        """Predict like anomalib, reading a file or PIL image with the project's reader."""
        if isinstance(image, str | Path | Image):
            image = read_image(image, as_tensor=False)
        return super().predict(image)

    def pre_process(self, image: np.ndarray) -> np.ndarray:
        """Run anomalib's pre-processing (``[0, 1]`` float, ``(B, C, H, W)``), then the value and shape checks."""
        image = super().pre_process(image)
        check_pixel_values(image)
        dims = self.input_blob.get_partial_shape()
        check_image_batch(image.shape, [dim.get_length() if dim.is_static else None for dim in dims])
        return image


class TorchInferencer(_TorchInferencer):
    """anomalib's ``TorchInferencer`` that checks the channel count (the exported model resizes any size)."""

    def __init__(self, path: str | Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(_existing(path), *args, **kwargs)

    def predict(self, image: str | Path | np.ndarray | Image | torch.Tensor) -> ImageBatch:
        """Predict like anomalib, reading a file or PIL image with the project's reader."""
        if isinstance(image, str | Path | Image):
            image = read_image(image, as_tensor=True)
        return super().predict(image)

    def pre_process(self, image: torch.Tensor) -> torch.Tensor:
        """Run anomalib's pre-processing (``(B, C, H, W)`` on the device), then the value and channel checks."""
        image = super().pre_process(image)
        check_pixel_values(image)
        check_image_batch(image.shape, (None, RGB, None, None))
        return image

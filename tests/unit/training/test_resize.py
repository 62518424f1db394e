# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The exportable antialiased resize: same pixels as training's resize, in torch, ONNX Runtime and OpenVINO."""

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.pre_processing import PreProcessor
from torch.nn import functional as F
from torchvision.transforms.v2 import Compose, Normalize, Resize

from anomalib_hvq import HVQTrans
from anomalib_hvq.deploy.runtimes import onnxruntime_runner, openvino_runner
from anomalib_hvq.training.resize import AntialiasedPreProcessor, ExportableAntialiasResize, resize_antialiased

# torch's float32 antialias weights are themselves off by up to ~1.5e-5 (its float64 path and ours agree to 1e-8).
TORCH_TOLERANCE = 5e-5


@pytest.mark.parametrize(("shape", "size"), [((2, 3, 700, 1024), (224, 224)), ((1, 3, 30, 50), (64, 48))])
def test_matches_torch_antialiased_interpolate(shape: tuple[int, ...], size: tuple[int, int]) -> None:
    images = torch.rand(shape)
    expected = F.interpolate(images, size=size, mode="bilinear", antialias=True)
    torch.testing.assert_close(resize_antialiased(images, size), expected, atol=TORCH_TOLERANCE, rtol=0)
    # ... and it is not the plain bilinear resize anomalib exports by default.
    plain = F.interpolate(images, size=size, mode="bilinear", antialias=False)
    assert (plain - expected).abs().max() > 100 * TORCH_TOLERANCE or shape[-1] < size[-1]


def test_same_size_is_the_identity() -> None:
    images = torch.rand(1, 3, 40, 56)
    assert torch.equal(resize_antialiased(images, (40, 56)), images)


def test_pre_processor_exports_what_it_trains_with() -> None:
    pre_processor = HVQTrans.configure_pre_processor(image_size=(64, 64), backbone="tf_efficientnet_lite0")
    assert isinstance(pre_processor, AntialiasedPreProcessor)
    images = torch.rand(2, 3, 300, 200)
    torch.testing.assert_close(pre_processor(images), pre_processor.transform(images), atol=2e-4, rtol=0)
    # A checkpoint restores `transform` and the exported resize follows it (anomalib's would drop antialiasing).
    restored = HVQTrans.configure_pre_processor(backbone="tf_efficientnet_lite0")
    restored.load_checkpoint_config(pre_processor.checkpoint_config())
    resize = restored.export_transform.transforms[0]
    assert isinstance(resize, ExportableAntialiasResize) and resize.size == (64, 64)
    assert not PreProcessor(pre_processor.transform).export_transform.transforms[0].antialias


def test_resizes_that_cannot_keep_antialiasing_fall_back_to_anomalib() -> None:
    transform = Compose([Resize(64, antialias=True), Normalize(mean=[0.5] * 3, std=[0.5] * 3)])
    resize = AntialiasedPreProcessor(transform).export_transform.transforms[0]
    assert isinstance(resize, Resize) and not resize.antialias


class _Resize(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return resize_antialiased(images, (64, 64))


def test_onnx_and_openvino_resize_any_input_size(tmp_path: Path) -> None:
    path = tmp_path / "resize.onnx"
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    torch.onnx.export(_Resize().eval(), (torch.rand(2, 3, 32, 32),), str(path), dynamo=True, dynamic_shapes=(dims,))
    runtimes = {
        "onnxruntime": onnxruntime_runner(path),
        "openvino_f32": openvino_runner(path, precision="f32"),
        # bf16 arithmetic: the weights are built in integers, so they survive it (float positions would not).
        "openvino_default": openvino_runner(path, precision=None),
    }
    for shape in [(1, 3, 700, 1024), (3, 3, 64, 64), (1, 3, 20, 90)]:
        images = np.random.default_rng(0).random(shape, dtype=np.float32)
        expected = resize_antialiased(torch.from_numpy(images), (64, 64)).numpy()
        for name, run in runtimes.items():
            result = next(iter(run(images).values()))
            tolerance = 2e-2 if name == "openvino_default" else 1e-5
            assert result.shape == expected.shape, name
            assert np.abs(result - expected).max() <= tolerance, (name, shape)

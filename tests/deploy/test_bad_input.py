# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Wrong image sizes, channel counts and missing files give errors that name the cause and the fix."""

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.deploy import ExportType

from anomalib_hvq import HVQTrans
from anomalib_hvq.deploy.inferencers import OpenVINOInferencer, TorchInferencer
from anomalib_hvq.deploy.runtimes import torch_runner

STATIC_SIZE = (48, 40)


@pytest.fixture(scope="module")
def static_openvino(exported, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fitted tiny model exported for one fixed input size."""
    return exported.model.to_openvino(tmp_path_factory.mktemp("static"), input_size=STATIC_SIZE)


def test_static_shape_export_runs_at_its_size(exported, static_openvino: Path, monkeypatch, tmp_path: Path) -> None:
    """A fixed-size OpenVINO model compiles (the resize is written so OpenVINO cannot mis-fuse it) and agrees."""
    monkeypatch.chdir(tmp_path)  # the inferencer writes an openvino_cache folder into the cwd
    image = np.random.default_rng(0).random((3, *STATIC_SIZE), dtype=np.float32)
    inferencer = OpenVINOInferencer(path=static_openvino, device="CPU", config={"INFERENCE_PRECISION_HINT": "f32"})
    predicted = inferencer.predict(image)
    reference = torch_runner(exported.model)(image[None])
    assert abs(float(np.ravel(predicted.pred_score)[0]) - float(reference["pred_score"][0])) <= 1e-4


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((3, 64, 64), r"is 64x64 but this model was exported for 48x40 images only.*Resize the image to 48x40"),
        ((1, *STATIC_SIZE), r"has 1 channels but the model takes 3 \(RGB\)\. Convert it to RGB"),
        ((*STATIC_SIZE, 4), r"has 4 channels but the model takes 3"),
    ],
)
def test_openvino_inferencer_rejects_images_that_do_not_fit(
    static_openvino: Path, shape: tuple[int, ...], match: str, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    inferencer = OpenVINOInferencer(path=static_openvino, device="CPU")
    with pytest.raises(ValueError, match=match):
        inferencer.predict(np.random.default_rng(0).random(shape, dtype=np.float32))


def test_torch_inferencer_rejects_wrong_channel_count(exported, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")  # anomalib refuses to unpickle a .pt model without it
    path = exported.engine.export(model=exported.model, export_type=ExportType.TORCH, export_root=tmp_path)
    inferencer = TorchInferencer(path=path, device="cpu")
    assert inferencer.predict(torch.rand(3, 80, 72)).pred_score.shape == (1,)  # any size is resized in the model
    with pytest.raises(ValueError, match="has 4 channels but the model takes 3"):
        inferencer.predict(torch.rand(4, 64, 64))


def test_missing_files_name_the_path_and_what_to_pass(exported, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.ckpt"
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at .*nowhere.*Pass the \.ckpt file"):
        exported.engine.export(model=exported.model, export_type=ExportType.TORCH, ckpt_path=missing)
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        HVQTrans.load_from_checkpoint(missing)
    with pytest.raises(FileNotFoundError, match=r"No exported model at .*Export one first"):
        OpenVINOInferencer(path=tmp_path / "model.xml")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_openvino_inferencer_refuses_non_finite_pixels(exported, value: float, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    image = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    image[1, 2, 3] = value
    inferencer = OpenVINOInferencer(path=exported.openvino, device="CPU")
    with pytest.raises(ValueError, match=r"holds 1 NaN or infinite value\(s\); its score would be NaN"):
        inferencer.predict(image)


def test_torch_inferencer_refuses_non_finite_integer_and_out_of_range_images(
    exported, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    path = exported.engine.export(model=exported.model, export_type=ExportType.TORCH, export_root=tmp_path)
    inferencer = TorchInferencer(path=path, device="cpu")
    image = torch.rand(3, 64, 64)
    image[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        inferencer.predict(image)
    with pytest.raises(ValueError, match=r"dtype torch.uint8; pass float values in \[0, 1\]"):
        inferencer.predict((torch.rand(3, 64, 64) * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"values lie in \[.*\], not \[0, 1\]"):
        inferencer.predict(torch.rand(3, 64, 64) * 255)

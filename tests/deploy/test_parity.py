# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Exported HVQ-Trans (pre-processing to post-processing) agrees with PyTorch on full-size images."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from anomalib.data.utils import read_image
from anomalib.pre_processing.utils.transform import get_exportable_transform
from export_helpers import full_size_images, save_png

from anomalib_hvq.deploy.runtimes import compare, onnxruntime_runner, openvino_runner, torch_runner


@pytest.mark.parametrize("batch_size", [1, 3])
def test_onnx_and_openvino_fp32_match_pytorch(exported, batch_size: int) -> None:
    images = full_size_images(batch_size, defect=True)
    reference = torch_runner(exported.model)(images)
    assert np.ptp(reference["anomaly_map"]) > 0
    for name, run in {
        "onnxruntime": onnxruntime_runner(exported.onnx),
        "openvino": openvino_runner(exported.openvino, precision="f32"),
    }.items():
        result = run(images)
        assert result["anomaly_map"].shape == (batch_size, 1, 64, 64), name
        assert result["pred_score"].shape == (batch_size,), name
        diff = compare(reference, result)
        assert diff["map_rel"] <= 1e-4, (name, diff)
        assert diff["score_abs"] <= 1e-4, (name, diff)
        assert diff["label_mismatch"] == 0, (name, diff)


def test_openvino_fp16_weights_stay_close(exported) -> None:
    images = full_size_images(3, defect=True)
    diff = compare(
        torch_runner(exported.model)(images), openvino_runner(exported.openvino_fp16, precision="f32")(images)
    )
    assert diff["map_rel"] <= 1e-2 and diff["score_abs"] <= 1e-2, diff


def test_exported_model_resizes_full_size_images_like_engine_predict(exported, tmp_path: Path) -> None:
    """The trap: anomalib's exported resize drops antialiasing; ours keeps it, so predict and export agree."""
    path = save_png(full_size_images(2)[1], tmp_path / "full_size.png")
    predicted = exported.engine.predict(model=exported.model, data_path=path)[0]
    image = read_image(path, as_tensor=True).unsqueeze(0).numpy()
    exported_score = openvino_runner(exported.openvino, precision="f32")(image)["pred_score"]
    assert abs(float(exported_score[0]) - float(predicted.pred_score[0])) <= 1e-4
    # What anomalib's own exported pre-processor would have scored: visibly different.
    pre_processor = exported.model.pre_processor
    antialiased, pre_processor.export_transform = (
        pre_processor.export_transform,
        get_exportable_transform(pre_processor.transform),
    )
    try:
        plain_score = torch_runner(exported.model)(image)["pred_score"]
    finally:
        pre_processor.export_transform = antialiased
    assert abs(float(plain_score[0]) - float(predicted.pred_score[0])) > 1e-2


def test_graph_holds_every_class_codebook(exported) -> None:
    """The label-free router picks codebooks at run time, so all classes' codebooks are in the graph."""
    model = exported.model.model
    codebook_shape = (model.num_classes, model.num_codes)
    graph = onnx.load(str(exported.onnx))
    codebooks = [t for t in graph.graph.initializer if tuple(t.dims[:2]) == codebook_shape and len(t.dims) == 3]
    assert len(codebooks) >= model.num_layers + 1  # top level + one per lower level

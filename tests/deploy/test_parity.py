# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Exported HVQ-Trans (pre-processing to post-processing) agrees with PyTorch on full-size images."""

from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from anomalib.data.utils import read_image
from anomalib.pre_processing.utils.transform import get_exportable_transform
from export_helpers import full_size_images, save_png

from anomalib_hvq.deploy.inferencers import OpenVINOInferencer
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


def test_onnx_file_is_plain_opset_18_and_openvino_compiles_it_directly(exported) -> None:
    """OpenVINO, ONNX Runtime and TensorRT 10 read standard opset 18; OpenVINO takes the .onnx file as it is."""
    # Exported at 18 directly: no failed down-conversion (and its traceback) in the log.
    assert not [message for message in exported.export_warnings if "version" in message.lower()]
    graph = onnx.load(str(exported.onnx), load_external_data=False)
    assert [(opset.domain, opset.version) for opset in graph.opset_import] == [("", 18)]
    assert not graph.functions and {node.domain for node in graph.graph.node} == {""}  # no custom ops
    images = full_size_images(2, defect=True)
    compiled = ov.Core().compile_model(str(exported.onnx))  # the call: no IR, no config
    result = compiled(images)
    outputs = {name: np.asarray(result[output]) for output in compiled.outputs for name in output.names}
    assert outputs["anomaly_map"].shape == (2, 1, 64, 64) and outputs["pred_score"].shape == (2,)
    # The same file at float32 (the CPU's default may be bf16, see the inferencer test) matches PyTorch.
    diff = compare(torch_runner(exported.model)(images), openvino_runner(exported.onnx, precision="f32")(images))
    assert diff["map_rel"] <= 1e-4 and diff["score_abs"] <= 1e-4, diff


def test_openvino_inferencer_computes_in_float32_by_default(exported, monkeypatch, tmp_path: Path) -> None:
    """OpenVINO ignores a precision hint stored in the IR, so the project's inferencer passes f32 when compiling."""
    monkeypatch.chdir(tmp_path)  # the inferencer writes an openvino_cache folder into the cwd
    requested = []
    compile_model = ov.Core.compile_model

    def recording(core, model, device_name=None, config=None):
        requested.append(dict(config or {}))
        return compile_model(core, model, device_name, config)

    monkeypatch.setattr(ov.Core, "compile_model", recording)
    inferencer = OpenVINOInferencer(exported.openvino, device="CPU")
    assert inferencer.model.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    OpenVINOInferencer(exported.openvino, device="CPU", precision="bf16")
    OpenVINOInferencer(exported.openvino, device="CPU", precision=None)
    OpenVINOInferencer(exported.openvino, device="CPU", config={"INFERENCE_PRECISION_HINT": "bf16"})
    hints = [config.get("INFERENCE_PRECISION_HINT") for config in requested]
    assert hints == ["f32", "bf16", None, "bf16"]

    image = full_size_images(1, defect=True)[0]
    predicted = inferencer.predict(image)
    reference = torch_runner(exported.model)(image[None])
    value_range = np.ptp(reference["anomaly_map"])
    assert np.abs(np.asarray(predicted.anomaly_map) - reference["anomaly_map"]).max() <= 1e-4 * value_range

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Run exported HVQ-Trans models in ONNX Runtime and OpenVINO, and compare their outputs.

Outputs of every runtime come back as ``{name: np.ndarray}`` with anomalib's export names
(``pred_score``, ``pred_label``, ``anomaly_map``, ``pred_mask``), so that parity checks and the
latency benchmark treat PyTorch, ONNX Runtime and OpenVINO alike. Only numpy and the runtime are
imported at module level: the benchmark measures each runtime's memory in a process of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Outputs = dict[str, np.ndarray]
Runner = Callable[[np.ndarray], Outputs]


def torch_runner(model: Any, threads: int | None = None) -> Runner:
    """Wrap an ``AnomalibModule`` in eval mode (pre-processing, model, post-processing) as a function of a batch."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    model.eval()

    def run(images: np.ndarray) -> Outputs:
        with torch.inference_mode():
            result = model(torch.from_numpy(images))._asdict()
        return {name: value.numpy() for name, value in result.items() if value is not None}

    return run


def onnxruntime_runner(path: str | Path, threads: int | None = None) -> Runner:
    """ONNX Runtime CPU session as a function of a ``(B, 3, H, W)`` float32 batch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    input_name = session.get_inputs()[0].name

    def run(images: np.ndarray) -> Outputs:
        return dict(zip(names, session.run(None, {input_name: images}), strict=True))

    return run


def openvino_runner(
    path: str | Path,
    precision: str | None = "f32",
    threads: int | None = None,
    device: str = "CPU",
) -> Runner:
    """Compiled OpenVINO model as a function of a batch.

    Args:
        path: ``.xml`` or ``.onnx`` file.
        precision: ``INFERENCE_PRECISION_HINT`` (``"f32"``, ``"bf16"``, ``"f16"``), or ``None`` for
            the device default (bf16 on CPUs with AVX512-BF16 or AMX).
        threads: ``INFERENCE_NUM_THREADS``; ``None`` for the default.
        device: OpenVINO device.

    """
    import openvino as ov

    config: dict[str, Any] = {}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), device, config)
    request = compiled.create_infer_request()
    names = [next(iter(output.names)) for output in compiled.outputs]

    def run(images: np.ndarray) -> Outputs:
        result = request.infer({0: images})
        return {name: np.array(result[index]) for index, name in enumerate(names)}

    return run


def convert_to_openvino(onnx_path: str | Path, xml_path: str | Path, fp16: bool = False) -> Path:
    """Convert an exported ONNX model to OpenVINO IR exactly as anomalib's ``to_openvino`` does."""
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=fp16)
    return xml_path


def model_size_bytes(path: str | Path) -> int:
    """Bytes on disk of an exported model with its weight side files (``.onnx.data``, ``.bin``)."""
    path = Path(path)
    companions = [path, path.with_suffix(".bin"), path.with_name(path.name + ".data")]
    return sum(file.stat().st_size for file in dict.fromkeys(companions) if file.is_file())


def compare(reference: Outputs, other: Outputs) -> dict[str, float]:
    """Differences of ``other`` from ``reference``.

    Returns:
        ``map_abs`` (max abs difference of the anomaly maps), ``map_rel`` (the same divided by the
        reference map's range), ``score_abs`` (max abs difference of the image scores) and
        ``label_mismatch`` (number of images whose predicted label differs).

    """
    ref_map, other_map = (np.asarray(o["anomaly_map"], dtype=np.float64) for o in (reference, other))
    map_abs = float(np.abs(ref_map - other_map).max())
    value_range = float(np.ptp(ref_map))
    ref_score, other_score = (np.asarray(o["pred_score"], dtype=np.float64).reshape(-1) for o in (reference, other))
    labels = (np.asarray(o["pred_label"]).reshape(-1).astype(bool) for o in (reference, other))
    return {
        "map_abs": map_abs,
        "map_rel": map_abs / value_range if value_range > 0 else map_abs,
        "score_abs": float(np.abs(ref_score - other_score).max()),
        "label_mismatch": float(np.sum(np.not_equal(*labels))),
    }

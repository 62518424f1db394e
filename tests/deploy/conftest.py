# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A tiny HVQ-Trans fitted on 3 categories and exported once to ONNX and OpenVINO for the export tests."""

import logging
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from engine_helpers import tiny_datamodule, tiny_engine, tiny_model

from anomalib_hvq import HVQTrans
from anomalib_hvq.deploy.runtimes import convert_to_openvino


class Exported(NamedTuple):
    model: HVQTrans
    engine: Engine
    checkpoint: Path
    onnx: Path
    openvino: Path
    openvino_fp16: Path
    export_warnings: list[str]  # warnings logged while exporting to ONNX


class _Records(logging.Handler):
    """Keeps the messages of the log records it receives."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="session")
def exported(tiny_mvtec_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Fitted for one epoch; ONNX through ``Engine.export``, OpenVINO FP32/FP16 converted from that ONNX file
    the way anomalib's ``to_openvino`` does (one dynamo export instead of three)."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("export")
    model, engine = tiny_model(), tiny_engine(root)
    engine.fit(model=model, datamodule=tiny_datamodule(tiny_mvtec_root))
    records = _Records(level=logging.WARNING)
    logging.getLogger().addHandler(records)
    try:
        onnx_path = engine.export(model=model, export_type=ExportType.ONNX, export_root=root / "onnx")
    finally:
        logging.getLogger().removeHandler(records)
    return Exported(
        model=model.eval(),
        engine=engine,
        checkpoint=Path(engine.trainer.checkpoint_callback.best_model_path),
        onnx=onnx_path,
        openvino=convert_to_openvino(onnx_path, root / "openvino" / "model.xml"),
        openvino_fp16=convert_to_openvino(onnx_path, root / "openvino_fp16" / "model.xml", fp16=True),
        export_warnings=records.messages,
    )

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""`anomalib export --ckpt_path` with the plugin model, then anomalib's OpenVINOInferencer on a full-size image."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from anomalib.data.utils import read_image
from anomalib.deploy import OpenVINOInferencer
from export_helpers import full_size_images, save_png
from tiny_hvq import TINY_ARGS

from anomalib_hvq.deploy.runtimes import torch_runner


def test_cli_export_openvino_then_inferencer(exported, tmp_path: Path, monkeypatch) -> None:
    cli = Path(sys.executable).with_name("anomalib")
    command = [str(cli), "export", "--model=anomalib_hvq.HVQTrans", *TINY_ARGS, f"--ckpt_path={exported.checkpoint}"]
    command += ["--export_type=openvino", f"--export_root={tmp_path}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    xml = next(tmp_path.rglob("model.xml"))

    path = save_png(full_size_images(1, defect=True)[0], tmp_path / "image.png")
    monkeypatch.chdir(tmp_path)  # OpenVINOInferencer writes an openvino_cache folder into the cwd
    inferencer = OpenVINOInferencer(path=xml, device="CPU", config={"INFERENCE_PRECISION_HINT": "f32"})
    predicted = inferencer.predict(path)
    reference = torch_runner(exported.model)(read_image(path, as_tensor=True).unsqueeze(0).numpy())
    assert abs(float(torch.as_tensor(predicted.pred_score).flatten()[0]) - float(reference["pred_score"][0])) <= 1e-4
    assert np.abs(np.asarray(predicted.anomaly_map) - reference["anomaly_map"]).max() <= 1e-4

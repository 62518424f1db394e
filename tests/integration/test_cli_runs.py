# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Run folders of CLI commands and the table of predicted scores."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import torch
from anomalib.utils.path import create_versioned_dir

from anomalib_hvq.cli_runs import command_run_folder
from anomalib_hvq.metrics import PredictionTable


def test_a_command_gets_its_own_versions_and_leaves_trainings_latest_alone(tmp_path: Path) -> None:
    root = tmp_path / "HVQTrans" / "textures" / "all"
    create_versioned_dir(root)
    create_versioned_dir(root)  # training runs v0, v1; latest -> v1
    workspace = (root / "latest").resolve()  # what anomalib 2.7 gives test/predict: training's newest run
    first = command_run_folder(workspace, "test")
    second = command_run_folder(workspace, "test")
    assert (first, second) == (root / "test" / "v0", root / "test" / "v1")
    assert (root / "test" / "latest").resolve() == second
    assert (root / "latest").resolve() == root / "v1"
    # Without any training run anomalib names a `latest` that does not exist yet.
    assert command_run_folder(tmp_path / "HVQTrans" / "latest", "predict") == tmp_path / "HVQTrans" / "predict" / "v0"


def test_prediction_table_prints_and_writes_each_image(tmp_path: Path, capsys) -> None:
    table = PredictionTable()
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), is_global_zero=True)
    table.on_predict_start(trainer, None)
    for scores, labels, paths in [([0.9, 0.2], [True, False], ["a.png", "b.png"]), ([0.5], [True], ["c.png"])]:
        outputs = SimpleNamespace(pred_score=torch.tensor(scores), pred_label=torch.tensor(labels), image_path=paths)
        table.on_predict_batch_end(trainer, None, outputs, None, 0)
    table.on_predict_end(trainer, None)
    with (tmp_path / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["image_path"], float(row["score"]), row["label"]) for row in rows] == [
        ("a.png", 0.9, "anomalous"),
        ("b.png", 0.2, "normal"),
        ("c.png", 0.5, "anomalous"),
    ]
    assert json.loads((tmp_path / "predictions.json").read_text())[1] == {
        "image_path": "b.png",
        "score": 0.2,
        "label": "normal",
    }
    printed = capsys.readouterr().out
    assert "0.9000  anomalous  a.png" in printed and "0.2000  normal     b.png" in printed

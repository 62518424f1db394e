# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Fixtures for end-to-end runs through anomalib's Engine on tiny data."""

from pathlib import Path

import pytest
import torch
from engine_helpers import tiny_datamodule, tiny_engine, tiny_model


@pytest.fixture(scope="module")
def trained(tiny_mvtec_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny HVQ-Trans fitted for one epoch on 3 categories; returns (model, datamodule, engine, ckpt).

    Its score is calibrated (``calibrate_score=True``), so checkpoints, export and both inferencers are shown with
    the calibration buffers; a fresh default-built model restored from its checkpoint adopts them.
    """
    torch.manual_seed(0)
    model = tiny_model(calibrate_score=True)
    datamodule = tiny_datamodule(tiny_mvtec_root)
    engine = tiny_engine(tmp_path_factory.mktemp("run"))
    engine.fit(model=model, datamodule=datamodule)
    return model, datamodule, engine, Path(engine.trainer.checkpoint_callback.best_model_path)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Tiny HVQ-Trans models, datamodules and engines for end-to-end tests."""

from pathlib import Path

from anomalib.engine import Engine
from tiny_hvq import TINY_HVQ

from anomalib_hvq import HVQTrans
from anomalib_hvq.data import MultiClassFolder

TINY_MODEL = TINY_HVQ
IMAGE_SIZE = (64, 64)


def tiny_model(**overrides) -> HVQTrans:
    pre_processor = HVQTrans.configure_pre_processor(image_size=IMAGE_SIZE, backbone=TINY_MODEL["backbone"])
    return HVQTrans(**{**TINY_MODEL, **overrides}, pre_processor=pre_processor)


def tiny_datamodule(root: Path) -> MultiClassFolder:
    return MultiClassFolder(root=root, train_batch_size=4, eval_batch_size=4, num_workers=0, seed=0)


def tiny_engine(root_dir: Path) -> Engine:
    return Engine(
        default_root_dir=root_dir,
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        logger=False,
    )

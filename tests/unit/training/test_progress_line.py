# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The plain per-epoch progress line, the quiet ONNX export loggers and one console handler per CLI logger."""

import io
import logging
from types import SimpleNamespace

import torch
from rich.logging import RichHandler

from anomalib_hvq.cli_logging import one_console_handler
from anomalib_hvq.training.progress_line import EpochProgressLine, format_duration
from anomalib_hvq.training.unified_recipe import quiet_loggers


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert [format_duration(s) for s in (42.4, 725, 3 * 3600 + 125)] == ["42s", "12m05s", "3h02m"]


def test_one_line_per_epoch_with_the_size_weighted_loss_throughput_and_eta(monkeypatch) -> None:
    clock = iter([0.0, 0.0, 4.0, 4.0, 8.0])  # train start, epoch 1 start/end, epoch 2 start/end
    monkeypatch.setattr("anomalib_hvq.training.progress_line.time.perf_counter", lambda: next(clock))
    out = io.StringIO()
    line = EpochProgressLine(stream=out)
    trainer = SimpleNamespace(current_epoch=0, max_epochs=5, is_global_zero=True, sanity_checking=False)
    line.on_train_start(trainer, None)
    for epoch in range(2):
        trainer.current_epoch = epoch
        line.on_train_epoch_start(trainer, None)
        # Losses 1.0 on 6 images and 4.0 on 2: mean per image (6 + 8) / 8 = 1.75.
        for loss, size in ((1.0, 6), (4.0, 2)):
            batch = SimpleNamespace(image=torch.zeros(size, 3, 1, 1))
            line.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, batch, 0)
        line.on_train_epoch_end(trainer, None)
    lines = out.getvalue().splitlines()
    # 8 images in 4 s; after 2 epochs of 4 s each, 3 epochs of 4 s are left.
    assert lines == ["epoch 1/5  loss 1.7500  2.0 images/s  ETA 16s", "epoch 2/5  loss 1.7500  2.0 images/s  ETA 12s"]


def test_onnx_optimiser_loggers_are_quiet_only_during_export(caplog) -> None:
    logger = logging.getLogger("onnx_ir.passes.common.initializer_deduplication")
    with caplog.at_level(logging.INFO, logger="onnx_ir"):
        with quiet_loggers(["onnx_ir"]):
            logger.info("Replaced initializer 'val_28' with existing initializer 'val_6'")
            logger.error("a real problem")
        logger.info("after the export")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["a real problem", "after the export"]


def test_a_logger_with_plain_and_rich_console_handlers_keeps_one() -> None:
    for rich in (True, False):
        logger = logging.getLogger(f"test_one_console_handler_{rich}")
        plain, fancy, file = logging.StreamHandler(), RichHandler(), logging.FileHandler("/dev/null")
        for handler in (plain, fancy, file):
            logger.addHandler(handler)
        one_console_handler(logger, rich=rich)
        assert logger.handlers == ([fancy, file] if rich else [plain, file])

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""benchmarks/score_terms.py: its re-weighted scores agree with the model's own test metrics at those weights."""

import sys
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from tiny_hvq import TINY_HVQ

from anomalib_hvq import HVQTrans, Textures

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import score_terms


def cells_of_rows(report: str, text: str) -> list[list[str]]:
    """The metric cells of every table row that contains ``text``."""
    rows = [line.strip("|").split("|") for line in report.splitlines() if line.startswith("|") and text in line]
    return [[cell.strip() for cell in cells[1:]] for cells in rows]


def image_and_pixel_auroc(report: str, row_start: str) -> tuple[float, float]:
    image, pixel, *_ = cells_of_rows(report, f"| {row_start}")[0]
    return float(image), float(pixel)


def trained_on_brick(tmp_path: Path, **model_args: object) -> tuple[Path, Textures, Engine, HVQTrans]:
    """A tiny HVQ-Trans trained for one epoch on the generated brick data: data root, datamodule, engine, model."""
    root = tmp_path / "textures"
    data = Textures(root=root, categories=["brick"], train_batch_size=8, eval_batch_size=8, num_workers=0)
    engine = Engine(default_root_dir=tmp_path, max_epochs=1, accelerator="cpu", enable_progress_bar=False, logger=False)
    model = HVQTrans(**TINY_HVQ, **model_args)
    engine.fit(model, datamodule=data)
    return root, data, engine, model


def test_rows_match_the_model_tested_with_those_weights(tmp_path: Path) -> None:
    root, data, engine, model = trained_on_brick(tmp_path)
    checkpoint = tmp_path / "model.ckpt"
    engine.trainer.save_checkpoint(checkpoint)

    report = score_terms.main(
        ["--ckpt", str(checkpoint), "--root", str(root), "--categories", "brick", "--output", str(tmp_path / "out")]
    )

    for ot_weight, row in ((80.0, "error + 80 x OT (paper)"), (0.0, "reconstruction only")):
        model.model.anomaly_map.ot_weight = ot_weight
        tested = engine.test(model, datamodule=data)[0]
        expected = 100 * tested["image_AUROC/mean"], 100 * tested["pixel_AUROC/mean"]
        assert image_and_pixel_auroc(report, row) == pytest.approx(expected, abs=0.051), row
    assert (tmp_path / "out" / "score_terms.md").read_text() == report


def test_a_calibrated_model_gets_its_own_row_matching_its_test(tmp_path: Path) -> None:
    root, data, engine, model = trained_on_brick(tmp_path, calibrate_score=True)
    checkpoint = tmp_path / "model.ckpt"
    engine.trainer.save_checkpoint(checkpoint)

    report = score_terms.main(
        ["--ckpt", str(checkpoint), "--root", str(root), "--categories", "brick", "--output", str(tmp_path / "out")]
    )

    weight = float(model.model.anomaly_map.calibration.ot_weight)
    assert "(paper)" not in report  # 80 is not the paper's weight for a standardised error
    tested = engine.test(model, datamodule=data)[0]
    expected = 100 * tested["image_AUROC/mean"], 100 * tested["pixel_AUROC/mean"]
    row = f"error + {weight:.1f} x OT (the model's calibrated map)"
    assert image_and_pixel_auroc(report, row) == pytest.approx(expected, abs=0.051)


def test_recalibrate_fits_the_calibration_again_as_validation_does(tmp_path: Path) -> None:
    root, data, engine, model = trained_on_brick(tmp_path, calibrate_score=True)
    tested = engine.test(model, datamodule=data)[0]
    calibration = model.model.anomaly_map.calibration
    weight = float(calibration.ot_weight)
    with torch.no_grad():  # a stale calibration, as an older form or another validation set would leave
        calibration.residual_whitener.copy_(torch.eye(calibration.residual_whitener.shape[-1]))
        calibration.ot_weight.fill_(1.0)
    checkpoint = tmp_path / "stale.ckpt"
    engine.trainer.save_checkpoint(checkpoint)
    arguments = ["--ckpt", str(checkpoint), "--root", str(root), "--categories", "brick", "--weights", "80"]

    stale = score_terms.main([*arguments, "--output", str(tmp_path / "stale")])
    refitted = score_terms.main([*arguments, "--recalibrate", "--output", str(tmp_path / "refitted")])

    assert "error + 1.0 x OT (the model's calibrated map)" in stale
    row = f"error + {weight:.1f} x OT (the model's calibrated map)"
    expected = 100 * tested["image_AUROC/mean"], 100 * tested["pixel_AUROC/mean"]
    assert image_and_pixel_auroc(refitted, row) == pytest.approx(expected, abs=0.051)
    assert "re-fitted on the validation set" in refitted


def test_the_control_is_the_calibration_with_no_reconstruction(tmp_path: Path) -> None:
    root, _, engine, model = trained_on_brick(tmp_path, calibrate_score=True)
    arguments = ["--root", str(root), "--categories", "brick", "--weights", "80", "--recalibrate"]
    engine.trainer.save_checkpoint(tmp_path / "trained.ckpt")
    with torch.no_grad():  # output heads at zero: this model reconstructs every token as 0
        model.model.output_heads.weight.zero_()
        model.model.output_heads.bias.zero_()
    engine.trainer.save_checkpoint(tmp_path / "zero.ckpt")

    trained = score_terms.main(["--ckpt", str(tmp_path / "trained.ckpt"), *arguments, "--output", str(tmp_path / "a")])
    zero = score_terms.main(["--ckpt", str(tmp_path / "zero.ckpt"), *arguments, "--output", str(tmp_path / "b")])

    control = cells_of_rows(trained, "no reconstruction (rec = 0)")
    assert len(control) == 2
    assert cells_of_rows(zero, "no reconstruction (rec = 0)") == control  # whatever the decoder does
    # A model whose reconstruction is 0 scores exactly as its control, with and without the OT term.
    assert cells_of_rows(zero, "(the model's calibrated map)") == control[:1]
    assert cells_of_rows(zero, "| reconstruction only |") == control[1:]

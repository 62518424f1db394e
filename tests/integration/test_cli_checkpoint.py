# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""`anomalib predict/export/test --model anomalib_hvq.HVQTrans --ckpt_path X`: the model comes from the checkpoint.

Only `--model` and `--ckpt_path` are given: the CLI must not build the default model (B4, downloaded weights,
width 256), but the checkpoint's, offline. The checkpoints here say `pre_trained=True` and name a weight file
that does not exist, as one trained on another machine would.
"""

import csv
import json
from pathlib import Path

import lightning
import pytest
import torch
from anomalib.cli import AnomalibCLI
from test_cli import _anomalib
from tiny_uniad import TINY as TINY_UNIAD

from anomalib_hvq import ClassRouting, HVQTrans, UniAD
from anomalib_hvq.cli_checkpoint import command_line_model_keys
from anomalib_hvq.models.hvq_trans.faithfulness import Faithfulness

LEGACY = Path(__file__).parents[1] / "fixtures" / "hvq_tiny_v0_1.ckpt"
FROM_ANOTHER_MACHINE = {"pre_trained": True, "backbone_weights": "/training/machine/weights.pth"}


def _as_if_from_another_machine(checkpoint: Path, out: Path) -> Path:
    saved = torch.load(checkpoint, weights_only=False)
    saved["hyper_parameters"] = {**saved["hyper_parameters"], **FROM_ANOTHER_MACHINE}
    torch.save(saved, out)
    return out


@pytest.fixture(scope="module")
def checkpoint(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fitted on 3 categories, its saved arguments saying: downloaded weights and a gone file."""
    return _as_if_from_another_machine(trained[3], tmp_path_factory.mktemp("ckpt") / "model.ckpt")


def test_cli_predicts_exports_and_tests_with_only_model_and_checkpoint(
    checkpoint: Path, tiny_mvtec_root: Path, tmp_path: Path
) -> None:
    """Each command also writes into a versioned folder of its own (`<command>/vN`, `<command>/latest`)."""
    model = ["--model=anomalib_hvq.HVQTrans", f"--ckpt_path={checkpoint}"]
    images = tiny_mvtec_root / "grid" / "test"
    predict = _anomalib("predict", *model, f"--data={images}", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    run = tmp_path / "results" / "HVQTrans" / "predict"
    assert (run / "latest").resolve() == run / "v0"
    assert list((run / "v0" / "images").rglob("broken/*.png")), "predict wrote no images"
    with (run / "v0" / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert sorted(Path(row["image_path"]).name for row in rows) == sorted(p.name for p in images.rglob("*.png"))
    assert {row["label"] for row in rows} <= {"normal", "anomalous"}
    assert all(0 <= float(row["score"]) <= 1 for row in rows)
    assert len(json.loads((run / "v0" / "predictions.json").read_text())) == len(rows)
    for row in rows:  # printed too, one line per image
        assert f"{float(row['score']):.4f}  {row['label']}" in predict.stdout

    export = _anomalib("export", *model, "--export_type=openvino", cwd=tmp_path)
    assert export.returncode == 0, export.stderr[-3000:]
    assert (tmp_path / "results" / "HVQTrans" / "export" / "latest" / "weights" / "openvino" / "model.xml").is_file()

    data = ["--data=anomalib_hvq.data.MultiClassFolder", f"--data.root={tiny_mvtec_root}", "--data.num_workers=0"]
    test = _anomalib("test", *model, *data, cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "image_AUROC/grid" in test.stdout
    tables = list((tmp_path / "results").rglob("per_category_metrics.md"))
    assert [table.parent.relative_to(tables[0].parents[2]) for table in tables] == [Path("test/v0")]


def _cli(*args: str) -> AnomalibCLI:
    return AnomalibCLI(list(args), run=False)


def test_a_legacy_flat_checkpoint_builds_the_model_with_its_grouped_switches(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = _cli("predict", "--model=anomalib_hvq.HVQTrans", f"--ckpt_path={LEGACY}", f"--data={tmp_path}")
    assert isinstance(cli.model, HVQTrans)
    assert cli.model.hparams["hidden_dim"] == 16 and cli.model.hparams["num_codes"] == 8
    assert cli.model.class_names == ["a", "b"]
    # 0.1 saved ot_all_levels=True flat; the CLI's model must have it in its group.
    assert cli.model.model.faithfulness == Faithfulness(ot_all_levels=True)
    assert cli.model.hparams["pre_trained"] is False


def test_a_missing_checkpoint_is_named_instead_of_building_the_default_model(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "gone.ckpt"
    with pytest.raises(FileNotFoundError, match="No checkpoint at --ckpt_path"):
        _cli("predict", "--model=anomalib_hvq.HVQTrans", f"--ckpt_path={missing}", f"--data={tmp_path}")


def test_arguments_on_the_command_line_win_over_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = _cli(
        "predict",
        "--model=anomalib_hvq.HVQTrans",
        "--model.class_routing=oracle",
        "--model.faithfulness.sequential_ema=true",
        f"--ckpt_path={LEGACY}",
        f"--data={tmp_path}",
    )
    assert cli.model.class_routing is ClassRouting.ORACLE
    # One field of the group from the command line, the others still from the checkpoint.
    assert cli.model.model.faithfulness == Faithfulness(ot_all_levels=True, sequential_ema=True)
    assert cli.model.hparams["hidden_dim"] == 16


def test_uniad_checkpoint_builds_its_own_model(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = UniAD(**TINY_UNIAD)
    path = tmp_path / "uniad.ckpt"
    hyper_parameters = {**model.hparams, **FROM_ANOTHER_MACHINE}
    version = lightning.__version__
    torch.save(
        {"state_dict": model.state_dict(), "hyper_parameters": hyper_parameters, "pytorch-lightning_version": version},
        path,
    )
    cli = _cli("export", "--model=anomalib_hvq.UniAD", f"--ckpt_path={path}", "--export_type=torch")
    assert isinstance(cli.model, UniAD)
    assert tuple(cli.model.hparams["feature_size"]) == (4, 4) and cli.model.hparams["hidden_dim"] == 16
    cli.model.load_state_dict(model.state_dict())  # same architecture: every key and size matches


def test_model_keys_are_read_from_both_option_spellings() -> None:
    keys = command_line_model_keys(
        ["--model=x", "--model.hidden_dim=8", "--model.init_args.lr", "1", "--model.faithfulness.ot_all_levels=true"]
    )
    assert keys == {"hidden_dim", "lr", "faithfulness.ot_all_levels"}

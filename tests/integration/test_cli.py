# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The anomalib CLI with the plugin model: `anomalib train --model anomalib_hvq.HVQTrans ...`."""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from tiny_hvq import TINY_ARGS


def _anomalib(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).with_name("anomalib")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(cli), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_cli_train_on_all_mvtec_categories_then_predict(fake_mvtec15_root: Path, tmp_path: Path) -> None:
    """`anomalib train --model anomalib_hvq.HVQTrans --data MVTec` trains one model on 15 categories."""
    data_args = [
        "--data=MVTec",
        f"--data.root={fake_mvtec15_root}",
        "--data.num_workers=0",
        "--data.train_batch_size=4",
        "--data.eval_batch_size=4",
    ]
    train = _anomalib(
        "train",
        "--model=anomalib_hvq.HVQTrans",
        *TINY_ARGS,
        *data_args,
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        f"--default_root_dir={tmp_path / 'results'}",
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    output = train.stdout + train.stderr
    assert "image_AUROC" in output
    assert "image_AUROC/zipper" in output and "image_AUROC/mean" in output
    checkpoints = sorted((tmp_path / "results").rglob("*.ckpt"))
    assert checkpoints, "training wrote no checkpoint"

    predict = _anomalib(
        "predict",
        "--model=anomalib_hvq.HVQTrans",
        *TINY_ARGS,
        f"--ckpt_path={checkpoints[-1]}",
        f"--data={fake_mvtec15_root / 'grid' / 'test'}",
        f"--default_root_dir={tmp_path / 'predict'}",
        cwd=tmp_path,
    )
    assert predict.returncode == 0, predict.stderr[-3000:]


def test_cli_reads_grouped_switches_from_configs_and_the_command_line(tmp_path: Path) -> None:
    """The configs' `fast_training` group and a dotted `faithfulness` override reach the model's arguments."""
    config = Path(__file__).parents[2] / "configs" / "hvq_trans_demo.yaml"
    printed = _anomalib(
        "train", f"--config={config}", "--model.faithfulness.ot_all_levels=true", "--print_config", cwd=tmp_path
    )
    assert printed.returncode == 0, printed.stderr[-3000:]
    model_args = yaml.safe_load(printed.stdout)["model"]["init_args"]
    assert model_args["faithfulness"]["ot_all_levels"] is True
    assert model_args["fast_training"]["feature_cache"] is True
    assert model_args["codebook_recipe"]["kmeans_init"] is True

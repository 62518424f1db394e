# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""UniAD through anomalib's Engine on tiny multi-category data; configs."""

from pathlib import Path

import pytest
import torch
import yaml
from anomalib.engine import Engine
from tiny_uniad import TINY

from anomalib_hvq.data import MultiClassFolder
from anomalib_hvq.metrics import PerCategoryMetrics
from anomalib_hvq.models.uniad import UniAD

CONFIGS = Path(__file__).parents[4] / "configs"


@pytest.fixture(scope="module")
def fitted(tiny_mvtec_root: Path, tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    model = UniAD(**TINY, pre_processor=UniAD.configure_pre_processor((64, 64), backbone="tf_efficientnet_lite0"))
    datamodule = MultiClassFolder(root=tiny_mvtec_root, train_batch_size=4, eval_batch_size=4, num_workers=0)
    engine = Engine(
        default_root_dir=tmp_path_factory.mktemp("uniad"),
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        logger=False,
    )
    before = model.model.decoder.queries[0].weight.detach().clone()
    engine.fit(model=model, datamodule=datamodule)
    assert not torch.equal(before, model.model.decoder.queries[0].weight)
    return model, datamodule, engine


def test_fit_and_test_report_every_category(fitted) -> None:
    model, datamodule, engine = fitted
    results = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    assert 0.0 <= results["image_AUROC/mean"] <= 1.0
    metrics = next(cb for cb in engine.trainer.callbacks if isinstance(cb, PerCategoryMetrics))
    assert list(metrics.results.index) == ["bottle", "carpet", "grid", "mean"]
    assert metrics.score_source == "raw"


def test_recipe_settings(fitted) -> None:
    model, _, engine = fitted
    assert engine.trainer.gradient_clip_val == 0.1
    scheduler = engine.trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.step_size == 1  # 80% of 2 epochs
    assert sum(p.numel() for p in engine.trainer.optimizers[0].param_groups[0]["params"]) == sum(
        p.numel() for p in model.model.parameters() if p.requires_grad
    )


def test_checkpoint_reloads_with_the_same_scores(fitted) -> None:
    model, _, engine = fitted
    reloaded = UniAD.load_from_checkpoint(engine.trainer.checkpoint_callback.best_model_path)
    assert reloaded.hparams["neighbor_size"] == (3, 3)
    images = torch.randn(2, 3, 64, 64)
    model.model.eval()
    reloaded.model.eval()
    torch.testing.assert_close(reloaded.model(images).anomaly_map, model.model(images).anomaly_map)


@pytest.mark.parametrize("name", ["uniad_mvtec", "uniad_visa", "uniad_demo"])
def test_configs_build_the_model_they_describe(name: str) -> None:
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert config["model"]["class_path"] == "anomalib_hvq.UniAD"
    init_args = {**config["model"]["init_args"], "pre_trained": False}
    model = UniAD(**init_args)
    assert model.model.attn_mask.shape == (196, 196)
    if name == "uniad_demo":
        hvq_demo = yaml.safe_load((CONFIGS / "hvq_trans_demo.yaml").read_text())
        assert config["data"] == hvq_demo["data"]  # same data and schedule as the HVQ-Trans demo
        assert config["trainer"] == hvq_demo["trainer"]
        assert init_args["backbone"] == hvq_demo["model"]["init_args"]["backbone"]
        assert init_args["lr_schedule"] == hvq_demo["model"]["init_args"]["lr_schedule"]  # the fair part of the recipe
    else:
        assert config["seed_everything"] == 133 and config["trainer"]["max_epochs"] == 1000
        assert config["data"]["init_args"]["train_batch_size"] == 8

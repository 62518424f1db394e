# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The fast recipe through anomalib's Engine: k-means start, revival logging, cosine schedule, checkpoints."""

from pathlib import Path

import torch
from engine_helpers import tiny_datamodule, tiny_engine, tiny_model

from anomalib_hvq import HVQTrans
from anomalib_hvq.models.hvq_trans.codebook_recipe import CodebookRecipe
from anomalib_hvq.training.fast_training import FastTraining
from anomalib_hvq.training.optimization import LRSchedule


def test_fit_with_the_fast_recipe(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    recipe = CodebookRecipe(kmeans_init=True, kmeans_iterations=3, kmeans_images_per_class=2, revive_after=1)
    schedule = LRSchedule(cosine=True, warmup_steps=1)
    model = tiny_model(codebook_recipe=recipe, lr_schedule=schedule, fast_training=FastTraining(feature_cache=True))
    random_codes = model.model.quantizer.top.embed.clone()
    started = {}
    original = model.model.kmeans_init

    def record(features, class_index, **kwargs):
        started["classes"] = class_index.tolist()
        original(features, class_index, **kwargs)
        started["codes"] = model.model.quantizer.top.embed.clone()

    model.model.kmeans_init = record
    engine = tiny_engine(tmp_path)
    engine.fit(model=model, datamodule=tiny_datamodule(tiny_mvtec_root))
    # k-means saw at most 2 images of each of the 3 classes and replaced the N(0, 1) codes of all of them.
    assert sorted(set(started["classes"])) == [0, 1, 2]
    assert all(started["classes"].count(cls) <= 2 for cls in range(3))
    assert (started["codes"] - random_codes).abs().amax(dim=(1, 2)).min() > 0.1
    logged = engine.trainer.logged_metrics
    assert "codebook/top/revived" in logged
    assert "codebook/lower1/revived" in logged
    assert engine.trainer.lr_scheduler_configs[0].interval == "step"
    # The recipe travels in the checkpoint and loads with weights_only.
    loaded = HVQTrans.load_from_checkpoint(engine.trainer.checkpoint_callback.best_model_path)
    assert loaded.model.codebook_recipe == recipe
    assert loaded.lr_schedule == schedule

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""benchmarks/recipe_ablation.py: each variant switches exactly its part of the recipe; a tiny end-to-end run."""

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import compare
import recipe_ablation

from anomalib_hvq.models.hvq_trans.codebook_recipe import CodebookRecipe
from anomalib_hvq.training.optimization import LRSchedule

DEMO = yaml.safe_load(recipe_ablation.DEMO_CONFIG.read_text())["model"]["init_args"]


def built(variant: str):
    """The variant's HVQ-Trans as compare.py builds it (tiny, random backbone)."""
    args = recipe_ablation.variant_args(DEMO, recipe_ablation.VARIANTS[variant])
    args.update(hidden_dim=16, num_heads=2, ffn_dim=32, num_layers=1, num_codes=8, pre_trained=False)
    return compare.build_model(compare.Job("HVQTrans", compare.SHORT_NAMES["hvq_trans"], args, SETTINGS, "unused"))


SETTINGS = {"backbone": "tf_efficientnet_lite0", "image_size": 64, "backbone_weights": None, "pre_trained": False}
SETTINGS["model_args"] = {}


def test_each_variant_switches_only_its_part() -> None:
    demo_recipe, demo_schedule = CodebookRecipe(**DEMO["codebook_recipe"]), LRSchedule(**DEMO["lr_schedule"])
    # the demo has all on
    assert demo_recipe.kmeans_init and demo_recipe.revive_after > 0 and demo_schedule.cosine and DEMO["calibrate_score"]
    expected = {
        "paper-style": (CodebookRecipe(), LRSchedule(), False),
        "+ k-means init": (CodebookRecipe(kmeans_init=True), LRSchedule(), False),
        "+ revival": (CodebookRecipe(revive_after=demo_recipe.revive_after), LRSchedule(), False),
        "+ warm-up/cosine": (CodebookRecipe(), demo_schedule, False),
        "+ score calibration": (CodebookRecipe(), LRSchedule(), True),
        "all but score calibration": (demo_recipe, demo_schedule, False),
        "all (demo config)": (demo_recipe, demo_schedule, True),
    }
    assert set(expected) == set(recipe_ablation.VARIANTS)
    for variant, (recipe, schedule, calibrated) in expected.items():
        model = built(variant)
        switches = (model.model.codebook_recipe, model.lr_schedule, model.model.anomaly_map.calibration is not None)
        assert switches == (recipe, schedule, calibrated), variant


def test_tiny_run_writes_the_table(tmp_path: Path) -> None:
    config = yaml.safe_load(recipe_ablation.DEMO_CONFIG.read_text())
    config["model"]["init_args"].update(
        hidden_dim=16, num_heads=2, ffn_dim=32, num_layers=1, num_codes=8, pre_trained=False
    )
    config["model"]["init_args"]["codebook_recipe"]["kmeans_images_per_class"] = 2
    config["data"]["init_args"].update(train_batch_size=32, num_workers=0)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = ["--root", str(tmp_path / "textures"), "--config", str(path), "--epochs", "1", "--threads", "1"]
    argv += ["--categories", "brick", "--image-size", "64"]
    argv += ["--variants", "all (demo config)", "--output", str(tmp_path / "out")]
    report = recipe_ablation.main(argv)
    row = next(line for line in report.splitlines() if line.startswith("| all (demo config)"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert all(0 <= float(value) <= 100 for value in cells[1:4])
    assert len(cells[4].split(" / ")) == 2  # top + one lower level
    assert (tmp_path / "out" / "ablation.md").read_text() == report


def test_dead_fractions_list_the_top_level_first(tmp_path: Path) -> None:
    metrics = {f"codebook/{level}/dead_fraction": value for level, value in [("lower1", 0.1), ("lower2", 0.2)]}
    metrics |= {"codebook/top/dead_fraction": 0.9, "codebook/top/perplexity": 3.0, "train_loss": 1.0}
    (tmp_path / "fit_metrics.json").write_text(json.dumps(metrics, sort_keys=True))
    assert list(recipe_ablation.dead_fractions(tmp_path).items()) == [("top", 0.9), ("lower1", 0.1), ("lower2", 0.2)]


def test_sweep_changes_one_setting_per_variant(tmp_path: Path, monkeypatch) -> None:
    assert recipe_ablation.sweep_variants(["lr=1e-4,1e-3", "train_batch_size=8"]) == {
        "lr=1e-4": {"lr": 1e-4},
        "lr=1e-3": {"lr": 1e-3},
        "train_batch_size=8": {"train_batch_size": 8},
    }
    jobs = []

    def record(job: compare.Job) -> None:
        jobs.append(job)
        raise SystemExit  # stop before training

    monkeypatch.setattr(recipe_ablation, "run_isolated", record)
    for sweep in ("lr=1e-3", "train_batch_size=8"):
        with pytest.raises(SystemExit):
            recipe_ablation.main(["--variants", "--sweep", sweep, "--output", str(tmp_path)])
    by_lr, by_batch = jobs
    demo = {k: v for k, v in DEMO.items() if k not in ("backbone", "pre_trained")}  # settings, not model arguments
    assert by_lr.init_args == {**demo, "lr": 1e-3}
    assert by_lr.settings["train_batch_size"] == 16
    assert by_batch.init_args == demo  # the demo model, only the batch differs
    assert by_batch.settings["train_batch_size"] == 8
    with pytest.raises(ValueError, match="NAME=VALUE"):
        recipe_ablation.sweep_variants(["lr"])

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""PerCategoryMetrics driven hook by hook with fake batches, trainer and module."""

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import torch
from anomalib.data import ImageBatch
from anomalib.post_processing import PostProcessor

from anomalib_hvq.metrics import METRIC_NAMES, PerCategoryMetrics, per_category_metrics

from .synthetic import CATEGORIES, Synthetic, make_synthetic


@dataclass
class CategoryBatch(ImageBatch):
    """ImageBatch carrying the two fields of the project's multi-class batches."""

    class_index: torch.Tensor | None = None
    category: list[str] | None = None


class FakeModule:
    """Stands in for the LightningModule: records ``log`` calls."""

    def __init__(self, post_processor: Any = None) -> None:
        self.post_processor = post_processor
        self.logged: dict[str, float] = {}

    def log(self, name: str, value: float) -> None:
        self.logged[name] = value


def fake_trainer(log_dir: Path, datamodule: Any = None, **kwargs: Any) -> SimpleNamespace:
    defaults = {"callbacks": [], "is_global_zero": True, "barebones": False, "world_size": 1}
    return SimpleNamespace(
        datamodule=datamodule, log_dir=str(log_dir), default_root_dir=str(log_dir), **{**defaults, **kwargs}
    )


def make_batches(data: Synthetic, batch_size: int = 5, label_field: str = "category") -> list[ImageBatch]:
    """Split pooled data into batches (categories mixed within a batch) of post-test_step outputs."""
    batches = []
    for start in range(0, len(data.categories), batch_size):
        part = slice(start, start + batch_size)
        names = data.categories[part]
        fields = {
            "category": {"category": names},
            "class_index": {"class_index": torch.tensor([CATEGORIES.index(n) for n in names])},
            "none": {},
        }[label_field]
        batches.append(
            CategoryBatch(
                image=torch.zeros(len(names), 3, *data.maps.shape[-2:]),
                gt_label=data.labels[part],
                gt_mask=data.masks[part],
                pred_score=data.scores[part],
                anomaly_map=data.maps[part],
                **fields,
            )
        )
    return batches


def run_test(callback: PerCategoryMetrics, trainer: Any, module: FakeModule, batches: list[ImageBatch]) -> None:
    """Call the hooks in the order Lightning does during ``trainer.test``."""
    callback.on_test_start(trainer, module)
    for index, batch in enumerate(batches):
        callback.on_test_batch_end(trainer, module, batch, batch, index)
    callback.on_test_epoch_end(trainer, module)


def reference(data: Synthetic) -> pd.DataFrame:
    return per_category_metrics(data.categories, data.scores, data.labels, data.maps, data.masks)


def assert_same_table(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, atol=1e-6, check_index_type=False)


def test_logs_each_metric_per_category_and_mean(tmp_path: Path, synthetic: Synthetic) -> None:
    callback, module = PerCategoryMetrics(print_table=False), FakeModule()
    run_test(callback, fake_trainer(tmp_path), module, make_batches(synthetic))

    expected = reference(synthetic)
    rows = [*CATEGORIES, "mean"]
    assert set(module.logged) == {f"{metric}/{row}" for metric in METRIC_NAMES for row in rows}
    for metric in METRIC_NAMES:
        for row in rows:
            assert module.logged[f"{metric}/{row}"] == pytest.approx(expected.loc[row, metric], abs=1e-6)
    assert_same_table(callback.results, expected)
    assert callback.score_source == "raw"


def test_writes_markdown_and_csv_with_one_row_per_category_plus_mean(
    tmp_path: Path, synthetic: Synthetic, capsys: pytest.CaptureFixture[str]
) -> None:
    callback = PerCategoryMetrics(output_dir=tmp_path / "report")
    run_test(callback, fake_trainer(tmp_path / "logs"), FakeModule(), make_batches(synthetic))

    md_path, csv_path = (
        tmp_path / "report/per_category_metrics.md",
        tmp_path / "report/per_category_metrics.csv",
    )
    assert callback.report_paths == (md_path, csv_path)
    csv = pd.read_csv(csv_path, index_col="category")
    assert list(csv.index) == [*CATEGORIES, "mean"]
    assert_same_table(csv, callback.results)

    markdown = md_path.read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| :")]
    assert [row.split("|")[1].strip() for row in rows] == ["category", *CATEGORIES, "**mean**"]
    cable_auroc = rows[2].split("|")[2].strip()
    assert cable_auroc == f"{100 * callback.results.loc['cable', 'image_AUROC']:.1f}"
    assert markdown in capsys.readouterr().out  # also printed to the console


def test_default_output_dir_is_trainer_log_dir(tmp_path: Path, synthetic: Synthetic) -> None:
    callback = PerCategoryMetrics(print_table=False)
    run_test(callback, fake_trainer(tmp_path), FakeModule(), make_batches(synthetic))
    assert (tmp_path / "per_category_metrics.md").is_file()
    assert (tmp_path / "per_category_metrics.csv").is_file()


def test_class_index_is_mapped_through_datamodule_class_names(tmp_path: Path, synthetic: Synthetic) -> None:
    callback = PerCategoryMetrics(print_table=False)
    datamodule = SimpleNamespace(class_names=list(CATEGORIES))
    batches = make_batches(synthetic, label_field="class_index")
    run_test(callback, fake_trainer(tmp_path, datamodule), FakeModule(), batches)
    assert_same_table(callback.results, reference(synthetic))


@pytest.mark.parametrize(
    ("datamodule", "expected_name"), [(SimpleNamespace(category="bottle"), "bottle"), (None, "all")]
)
def test_plain_batches_form_a_single_category(
    tmp_path: Path, synthetic: Synthetic, datamodule: Any, expected_name: str
) -> None:
    callback, module = PerCategoryMetrics(print_table=False), FakeModule()
    run_test(callback, fake_trainer(tmp_path, datamodule), module, make_batches(synthetic, label_field="none"))

    pooled = per_category_metrics(
        ["pooled"] * len(synthetic.categories),
        synthetic.scores,
        synthetic.labels,
        synthetic.maps,
        synthetic.masks,
    )
    assert list(callback.results.index) == [expected_name, "mean"]
    assert callback.results.loc[expected_name].to_numpy() == pytest.approx(pooled.loc["pooled"].to_numpy())
    assert f"image_AUROC/{expected_name}" in module.logged


def test_second_test_run_starts_from_scratch(tmp_path: Path, synthetic: Synthetic) -> None:
    callback, trainer = PerCategoryMetrics(print_table=False), fake_trainer(tmp_path)
    run_test(callback, trainer, FakeModule(), make_batches(synthetic))
    first = callback.results.copy()
    run_test(callback, trainer, FakeModule(), make_batches(synthetic))
    assert_same_table(callback.results, first)

    # A different second run reports exactly its own data (no leftovers from the first one).
    other = make_synthetic(seed=1)
    run_test(callback, trainer, FakeModule(), make_batches(other))
    assert_same_table(callback.results, reference(other))


def test_masks_larger_than_maps_are_resized_nearest(tmp_path: Path, synthetic: Synthetic) -> None:
    batches = make_batches(synthetic)
    for batch in batches:  # masks at twice the map resolution, as from an un-resized dataset
        batch.gt_mask = batch.gt_mask.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    callback = PerCategoryMetrics(print_table=False)
    run_test(callback, fake_trainer(tmp_path), FakeModule(), batches)
    assert_same_table(callback.results, reference(synthetic))


def test_category_without_anomalies_logs_nan_and_is_footnoted(tmp_path: Path) -> None:
    data = make_synthetic(normal_only=("cable",))
    callback, module = PerCategoryMetrics(print_table=False), FakeModule()
    run_test(callback, fake_trainer(tmp_path), module, make_batches(data))

    assert all(math.isnan(module.logged[f"{metric}/cable"]) for metric in METRIC_NAMES)
    defined = callback.results.loc[["bottle", "screw"], "image_AUROC"].mean()
    assert module.logged["image_AUROC/mean"] == pytest.approx(defined)
    markdown = (tmp_path / "per_category_metrics.md").read_text()
    assert "n/a" in markdown and "all metrics: cable." in markdown


def test_missing_masks_make_pixel_metrics_nan_not_partial(tmp_path: Path, synthetic: Synthetic) -> None:
    batches = make_batches(synthetic)
    batches[0].gt_mask = None  # labels stay, so image metrics are still defined
    callback = PerCategoryMetrics(print_table=False)
    run_test(callback, fake_trainer(tmp_path), FakeModule(), batches)
    assert callback.results[["pixel_AUROC", "AUPRO"]].isna().all().all()
    assert callback.results["image_AUROC"].notna().all()


@pytest.mark.parametrize(("post_processor_first", "expected"), [(True, "normalized"), (False, "raw")])
def test_score_source_follows_callback_order(tmp_path: Path, post_processor_first: bool, expected: str) -> None:
    callback, post_processor = PerCategoryMetrics(), PostProcessor()
    order = [post_processor, callback] if post_processor_first else [callback, post_processor]
    callback.on_test_start(fake_trainer(tmp_path, callbacks=order), FakeModule(post_processor))
    assert callback.score_source == expected


def test_barebones_trainer_gets_metrics_without_log(tmp_path: Path, synthetic: Synthetic) -> None:
    trainer = fake_trainer(tmp_path, barebones=True, callback_metrics={}, logged_metrics={})
    module = FakeModule()
    run_test(PerCategoryMetrics(print_table=False), trainer, module, make_batches(synthetic))
    assert not module.logged
    assert float(trainer.callback_metrics["AUPRO/mean"]) == pytest.approx(reference(synthetic).loc["mean", "AUPRO"])

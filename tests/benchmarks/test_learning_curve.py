# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""benchmarks/learning_curve.py: per-epoch rows, evaluations at the chosen epochs, the mean-map baseline, the report."""

import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from lightning.pytorch import LightningModule
from matplotlib import image as mpimg

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import learning_curve

from anomalib_hvq import HVQTrans

CONFIGS = Path(__file__).parents[2] / "configs"
# Score calibration on: the curve must calibrate before each of its own test passes, as validation does.
TINY_HVQ = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 32, "num_codes": 8, "calibrate_score": True}


def run(root: Path, output: Path, *models: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    return learning_curve.main(
        [
            *("--data", "MultiClassFolder", "--root", str(root), "--models", *models),
            *(
                "--model-args",
                f"hvq_trans_paper_demo={json.dumps(TINY_HVQ)}",
                'patchcore={"coreset_sampling_ratio": 0.5}',
            ),
            *("--no-pre-trained", "--image-size", "64", "--epochs", "3", "--eval-epochs", "2", "--num-workers", "0"),
            *("--no-progress", "--output", str(output), *extra),
        ]
    )


def test_curve_has_a_row_per_epoch_evaluations_at_the_chosen_epochs_and_a_report(
    tiny_mvtec_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "curves"
    callers = []
    calibrate = HVQTrans.calibrate_score

    def record(module: HVQTrans, loader) -> None:
        callers.append(inspect.stack()[1].function)
        calibrate(module, loader)

    monkeypatch.setattr(HVQTrans, "calibrate_score", record)
    run(tiny_mvtec_root, output, str(CONFIGS / "hvq_trans_paper_demo.yaml"))
    assert callers.count("evaluate") == 2  # before the test passes after epochs 2 and 3
    # A second invocation into the same folder adds its model to the report (runs side by side add up).
    table = run(tiny_mvtec_root, output, "patchcore")

    assert list(table["model"].unique()) == ["hvq_trans_paper_demo", "patchcore"]
    hvq = pd.read_csv(output / "hvq_trans_paper_demo" / "curve.csv")
    assert hvq["epoch"].tolist() == [1, 2, 3]
    assert hvq["step"].is_monotonic_increasing and (hvq["epoch_s"] > 0).all()
    # Evaluated after the chosen epoch 2 and after the last epoch, never after epoch 1.
    assert hvq["evaluated"].tolist() == [False, True, True]
    assert hvq["image_AUROC"].isna().tolist() == [True, False, False]
    assert hvq.loc[1:, ["image_AUROC", "pixel_AUROC", "AUPRO"]].apply(lambda c: c.between(0, 1)).all().all()
    # Every epoch: train loss, validation MSE next to the category-mean baseline, codebook health per level.
    for column in ("train_loss", "val_mse", "val_mse_mean_baseline", "lr"):
        assert (hvq[column] > 0).all(), column
    assert hvq["val_mse_mean_baseline"].nunique() == 1  # the baseline does not depend on training
    for level in ("top", "lower1"):
        assert hvq[f"codebook/{level}/dead_fraction"].between(0, 1).all()
        assert (hvq[f"codebook/{level}/perplexity"] >= 1).all()
    per_category = pd.read_csv(output / "hvq_trans_paper_demo" / "per_category.csv")
    assert sorted(set(zip(per_category["epoch"], per_category["category"], strict=True))) == [
        (epoch, category) for epoch in (2, 3) for category in ("bottle", "carpet", "grid")
    ]

    patchcore = pd.read_csv(output / "patchcore" / "curve.csv")
    assert patchcore["epoch"].tolist() == [1] and patchcore["evaluated"].tolist() == [True]
    assert "val_mse" not in patchcore  # no reconstruction to probe

    markdown = (output / "learning_curve.md").read_text()
    assert "### hvq_trans_paper_demo" in markdown and "### patchcore" in markdown
    hvq_rows = markdown.split("### patchcore")[0]
    assert [line.split("|")[1].strip() for line in hvq_rows.splitlines() if line.startswith("| ")][1:] == ["2", "3"]
    image = mpimg.imread(output / "learning_curve.png")
    assert image.shape[0] > 300 and image.shape[1] > 900


def test_stop_epoch_ends_training_early_on_the_longer_schedule(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    # The first 2 epochs of a 10-epoch paper schedule: the rate stays at its peak (its step comes after
    # epoch 8), where a 2-epoch run would already have divided it by 10.
    extra = ("--epochs", "10", "--stop-epoch", "2", "--eval-epochs", "1", "5")
    run(tiny_mvtec_root, tmp_path, str(CONFIGS / "hvq_trans_paper_demo.yaml"), extra=extra)
    curve = pd.read_csv(tmp_path / "hvq_trans_paper_demo" / "curve.csv")
    assert curve["epoch"].tolist() == [1, 2]
    assert curve["evaluated"].tolist() == [True, True]  # epoch 1 as chosen, epoch 2 as the last one
    assert curve["lr"].tolist() == pytest.approx([1e-4, 1e-4])

    run(tiny_mvtec_root, tmp_path / "short", str(CONFIGS / "hvq_trans_paper_demo.yaml"), extra=("--epochs", "2"))
    short = pd.read_csv(tmp_path / "short" / "hvq_trans_paper_demo" / "curve.csv")
    assert short["lr"].iloc[-1] <= 1e-5 + 1e-12


@dataclass
class FakeBatch:
    image: torch.Tensor
    category: list[str]
    class_index: torch.Tensor
    gt_label: torch.Tensor


class FakeData(list):
    @staticmethod
    def collate_fn(items: list[FakeBatch]) -> FakeBatch:
        return FakeBatch(
            torch.cat([i.image for i in items]),
            [c for i in items for c in i.category],
            torch.cat([i.class_index for i in items]),
            torch.cat([i.gt_label for i in items]),
        )


class Reconstructor(torch.nn.Module):
    """Features are the images themselves; the reconstruction is each class's constant."""

    def __init__(self) -> None:
        super().__init__()
        self.feature_extractor = torch.nn.Identity()

    @staticmethod
    def reconstruct(features: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        return class_index.float().view(-1, 1, 1, 1).expand_as(features)


def sample(value: float, category: str, label: int = 0) -> FakeBatch:
    index = {"a": 0, "b": 1}[category]
    return FakeBatch(torch.full((1, 2, 2, 2), value), [category], torch.tensor([index]), torch.tensor([label]))


def test_probe_compares_the_reconstruction_with_each_category_mean_feature_map() -> None:
    module = LightningModule()
    module.model, module.pre_processor = Reconstructor(), None
    train = FakeData([sample(1.0, "a"), sample(3.0, "a"), sample(10.0, "b")])  # means: a = 2, b = 10
    validation = FakeData([sample(4.0, "a"), sample(9.0, "b"), sample(100.0, "b", label=1)])  # anomalous: ignored
    datamodule = SimpleNamespace(
        train_data=train,
        train_batch_size=2,
        num_workers=0,
        val_dataloader=lambda: torch.utils.data.DataLoader(validation, batch_size=2, collate_fn=validation.collate_fn),
    )
    probe = learning_curve.ReconstructionProbe()
    probe.fit(module, SimpleNamespace(datamodule=datamodule))
    model_mse, baseline_mse = probe.measure(module, SimpleNamespace(datamodule=datamodule))
    # Reconstructions 0 (class a) and 1 (class b): errors 4^2 and 8^2; baseline errors (4-2)^2 and (9-10)^2.
    assert model_mse == pytest.approx((16 + 64) / 2)
    assert baseline_mse == pytest.approx((4 + 1) / 2)

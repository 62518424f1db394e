# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""PerCategoryMetrics inside a real Lightning test run of a tiny AnomalibModule."""

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from anomalib import LearningType
from anomalib.data import InferenceBatch
from anomalib.models.components.base import AnomalibModule
from lightning.pytorch import LightningDataModule, Trainer
from torch import nn
from torch.utils.data import DataLoader

from anomalib_hvq.metrics import METRIC_NAMES, PerCategoryMetrics, per_category_metrics

from .synthetic import CATEGORIES, Synthetic
from .test_per_category_callback import make_batches


class _ReadOut(nn.Module):
    """'Predicts' what the test encoded in the image: map = channel 0, score = channel 1 at (0, 0)."""

    def forward(self, image: torch.Tensor) -> InferenceBatch:
        return InferenceBatch(pred_score=image[:, 1, 0, 0], anomaly_map=image[:, 0])


class _TinyModel(AnomalibModule):
    def __init__(self) -> None:
        super().__init__(pre_processor=False, visualizer=False)
        self.model = _ReadOut()

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        return {}

    @property
    def learning_type(self) -> LearningType:
        return LearningType.ONE_CLASS

    def training_step(self, *args: Any) -> None:
        del args

    def configure_optimizers(self) -> None:
        return None


class _DataModule(LightningDataModule):
    class_names: ClassVar[list[str]] = list(CATEGORIES)

    def __init__(self, data: Synthetic) -> None:
        super().__init__()
        self.batches = make_batches(data, batch_size=6)
        for batch in self.batches:
            # The batch fields are torchvision tv_tensors; write into a plain tensor.
            image = torch.zeros(batch.image.shape)
            image[:, 0] = batch.anomaly_map.as_subclass(torch.Tensor)
            image[:, 1, 0, 0] = batch.pred_score
            batch.image = image
            batch.anomaly_map = batch.pred_score = None  # the model must produce them

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.batches, batch_size=None)


def test_real_trainer_sees_raw_scores_and_returns_logged_metrics(tmp_path: Path, synthetic: Synthetic) -> None:
    model = _TinyModel()
    # Post-processing statistics fitted on bottle only: cable's scores (~10) would all clamp to 1.0.
    post = model.post_processor
    bottle = torch.tensor([c == "bottle" for c in synthetic.categories])
    low, high = synthetic.scores[bottle].min(), synthetic.scores[bottle].max()
    for buffer, value in (
        (post.image_min, low),
        (post.image_max, high),
        (post._image_threshold, (low + high) / 2),
    ):
        buffer.fill_(value)

    callback = PerCategoryMetrics(print_table=False)
    trainer = Trainer(
        callbacks=[callback],
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    (returned,) = trainer.test(model, datamodule=_DataModule(synthetic), verbose=False)

    expected = per_category_metrics(
        synthetic.categories, synthetic.scores, synthetic.labels, synthetic.maps, synthetic.masks
    )
    assert callback.score_source == "raw"
    assert expected.loc["cable", "image_AUROC"] > 0.6  # clamped scores would give exactly 0.5
    for metric in METRIC_NAMES:
        for row in [*CATEGORIES, "mean"]:
            assert returned[f"{metric}/{row}"] == pytest.approx(expected.loc[row, metric], abs=1e-6)
    # anomalib's own evaluator, after the post-processor, saw the normalised (clamped) scores.
    assert returned["image_AUROC"] != pytest.approx(expected.loc["mean", "image_AUROC"], abs=1e-3)
    assert (tmp_path / "per_category_metrics.csv").is_file()

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A training batch with a NaN/inf never reaches the codebooks, the router or the weights; it is skipped and counted."""

import logging

import pytest
import torch
from anomalib.data import ImageBatch
from lightning.pytorch import Trainer
from tiny_hvq import TINY_HVQ
from tiny_uniad import TINY as TINY_UNIAD

from anomalib_hvq import HVQTrans, UniAD
from anomalib_hvq.models.hvq_trans.class_router import CentroidRouter
from anomalib_hvq.models.hvq_trans.ema_codebook import EMAVectorQuantizer

SIZE = 32


def _batches(bad: int, count: int = 4, value: float = float("nan")) -> list[ImageBatch]:
    """``count`` batches of 2 random images; batch ``bad`` has one pixel set to ``value``."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for index in range(count):
        image = torch.rand(2, 3, SIZE, SIZE, generator=generator)
        if index == bad:
            image[1, 0, 5, 5] = value
        paths = [f"batch{index}/image{i}.png" for i in range(2)]
        batches.append(ImageBatch(image=image, gt_label=torch.zeros(2, dtype=torch.long), image_path=paths))
    return batches


def _fit(model, batches: list[ImageBatch]) -> None:
    trainer = Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=0.1,
    )
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))


def _all_finite(module: torch.nn.Module) -> bool:
    tensors = [*module.parameters(), *module.buffers()]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def test_hvq_training_skips_a_non_finite_batch_and_keeps_codebooks_router_and_weights(
    caplog: pytest.LogCaptureFixture,
) -> None:
    torch.manual_seed(0)
    pre_processor = HVQTrans.configure_pre_processor(image_size=(SIZE, SIZE), backbone=TINY_HVQ["backbone"])
    model = HVQTrans(**TINY_HVQ, pre_processor=pre_processor, evaluator=False, visualizer=False)
    with caplog.at_level(logging.WARNING):
        _fit(model, _batches(bad=1))
    assert _all_finite(model.model)  # codebooks (embed, embed_avg, cluster_size), router statistics, weights
    assert int(model.model.router.count.sum()) == 6  # the 3 clean batches of 2 images were counted, the bad one not
    skipped = [r.getMessage() for r in caplog.records if "non-finite loss" in r.getMessage()]
    assert len(skipped) == 1
    assert "1 batch(es) skipped" in skipped[0] and "batch1/image1.png" in skipped[0]
    model.eval()
    predictions = model.model(torch.rand(2, 3, SIZE, SIZE))
    assert torch.isfinite(predictions.pred_score).all() and torch.isfinite(predictions.anomaly_map).all()


def test_uniad_training_skips_a_non_finite_batch_and_keeps_its_weights(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    pre_processor = UniAD.configure_pre_processor(image_size=(SIZE, SIZE), backbone=TINY_UNIAD["backbone"])
    model = UniAD(**TINY_UNIAD, pre_processor=pre_processor, evaluator=False, visualizer=False)
    with caplog.at_level(logging.WARNING):
        _fit(model, _batches(bad=2))
    assert _all_finite(model.model)
    assert sum("non-finite loss" in r.getMessage() for r in caplog.records) == 1
    model.eval()
    assert torch.isfinite(model.model(torch.rand(2, 3, SIZE, SIZE)).pred_score).all()


def test_an_epoch_of_only_non_finite_batches_stops_training() -> None:
    pre_processor = UniAD.configure_pre_processor(image_size=(SIZE, SIZE), backbone=TINY_UNIAD["backbone"])
    model = UniAD(**TINY_UNIAD, pre_processor=pre_processor, evaluator=False, visualizer=False)
    batches = _batches(bad=0, count=2)
    batches[1].image[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"Every training batch of this epoch \(2\) had a non-finite loss"):
        _fit(model, batches)


def test_ema_update_leaves_the_codebook_of_a_class_with_non_finite_tokens_and_updates_the_others() -> None:
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(num_classes=2, dim=4, num_codes=3, decay=0.5)
    before = {name: buffer.clone() for name, buffer in quantizer.named_buffers()}
    tokens = torch.randn(2, 5, 4)
    tokens[0, 2, 1] = float("nan")
    quantizer(tokens, torch.tensor([0, 1]))
    for name in ("embed", "embed_avg", "cluster_size"):
        assert torch.equal(getattr(quantizer, name)[0], before[name][0]), name  # class 0 untouched
        assert not torch.equal(getattr(quantizer, name)[1], before[name][1]), name  # class 1 learned
        assert torch.isfinite(getattr(quantizer, name)).all(), name


def test_ema_revival_takes_no_token_from_a_non_finite_batch() -> None:
    quantizer = EMAVectorQuantizer(num_classes=1, dim=4, num_codes=3, decay=0.5, revive_after=1)
    tokens = torch.full((1, 5, 4), float("inf"))
    quantizer(tokens, torch.tensor([0]))
    assert torch.isfinite(quantizer.embed).all() and int(quantizer.revived) == 0


def test_router_skips_the_classes_whose_pooled_features_are_not_finite() -> None:
    router = CentroidRouter(num_classes=2, dim=3)
    pooled = torch.tensor([[1.0, 2.0, 3.0], [float("nan"), 0.0, 0.0], [3.0, 2.0, 1.0]])
    router.update(pooled, torch.tensor([0, 1, 0]))
    assert router.count.tolist() == [2.0, 0.0]
    torch.testing.assert_close(router.feature_sum, torch.tensor([[4.0, 4.0, 4.0], [0.0, 0.0, 0.0]]))

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Training from cached features: exactness, auto-disable, the image-free training set."""

import copy
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from engine_helpers import IMAGE_SIZE, tiny_datamodule, tiny_engine, tiny_model
from lightning.pytorch import seed_everything
from tiny_hvq import TINY_HVQ
from tiny_uniad import TINY as TINY_UNIAD
from torchvision.transforms import v2

from anomalib_hvq import UniAD
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel
from anomalib_hvq.training.cached_training import CachedFeatureDataset, CachedTraining, cache_blocker
from anomalib_hvq.training.fast_training import FastTraining
from anomalib_hvq.training.feature_cache import FeatureCache


def tiny_uniad(**overrides) -> UniAD:
    pre_processor = UniAD.configure_pre_processor(image_size=IMAGE_SIZE, backbone=TINY_UNIAD["backbone"])
    return UniAD(**{**TINY_UNIAD, **overrides}, pre_processor=pre_processor)


def _loss_and_gradients(model: HVQTransModel, seed: int, **inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(seed)  # same dropout masks in both runs
    loss = model.training_output(**inputs).terms.loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_cached_features_give_identical_loss_gradients_and_codebooks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = HVQTransModel(num_classes=3, **TINY_HVQ, feature_size=(4, 4)).train()  # dropout 0.1 is active
    images, class_index = torch.randn(4, 3, 64, 64), torch.tensor([2, 0, 1, 0])
    paths = []
    for index in range(4):
        (tmp_path / f"{index}.png").write_bytes(bytes([index]))
        paths.append(str(tmp_path / f"{index}.png"))
    cache = FeatureCache()

    def compute(positions):  # other batches than training's: pairs in reverse order
        for start in range(0, len(positions), 2):
            chunk = positions[start : start + 2][::-1]
            yield chunk, model.feature_extractor(images[chunk])

    cache.prepare(paths, "key", compute)
    start = copy.deepcopy(model.state_dict())
    loss, gradients = _loss_and_gradients(model, 1, images=images, class_index=class_index)
    after = copy.deepcopy(model.state_dict())
    model.load_state_dict(start)
    features = cache.lookup(paths).float()
    cached_loss, cached_gradients = _loss_and_gradients(
        model, 1, images=None, class_index=class_index, features=features
    )
    assert torch.equal(loss, cached_loss)
    assert gradients.keys() == cached_gradients.keys() and len(gradients) > 10
    assert all(torch.equal(gradients[name], cached_gradients[name]) for name in gradients)
    # The EMA codebooks and router statistics learn the same from cached features.
    assert all(torch.equal(after[name], tensor) for name, tensor in model.state_dict().items())


def test_features_of_the_wrong_shape_are_refused() -> None:
    model = HVQTransModel(num_classes=1, **TINY_HVQ, feature_size=(4, 4)).train()
    with pytest.raises(ValueError, match="another backbone or feature size: rebuild the feature cache"):
        model.training_output(None, features=torch.randn(2, 272, 14, 14))
    with pytest.raises(ValueError, match="needs images or precomputed features"):
        model.training_output(None)


def test_cache_is_refused_when_features_would_not_be_a_function_of_the_image(tiny_mvtec_root: Path) -> None:
    datamodule = tiny_datamodule(tiny_mvtec_root)
    datamodule.setup()
    assert cache_blocker(backbone_train_mode=False, datamodule=datamodule) is None
    assert "train mode" in cache_blocker(backbone_train_mode=True, datamodule=datamodule)
    assert "image paths" in cache_blocker(backbone_train_mode=False, datamodule=None)
    datamodule.train_augmentations = v2.Compose([v2.Resize((64, 64)), v2.RandomHorizontalFlip(), v2.ColorJitter(0.1)])
    assert "may be random (ColorJitter, RandomHorizontalFlip)" in cache_blocker(False, datamodule)
    datamodule.train_augmentations = v2.Compose([v2.Resize((64, 64)), v2.CenterCrop(60)])  # deterministic: fine
    assert cache_blocker(False, datamodule) is None
    with pytest.raises(ValueError, match="feature_cache must be"):
        CachedTraining("gpu")


def test_cached_batches_carry_paths_and_classes_but_no_images(tiny_mvtec_root: Path) -> None:
    datamodule = tiny_datamodule(tiny_mvtec_root)
    datamodule.setup()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable" (pandas 3 views)
        dataset = CachedFeatureDataset(datamodule.train_data)
    assert len(dataset) == len(datamodule.train_data) == 9
    indices = [4, 0, 7]
    batch = next(iter(dataset.loader(batch_size=9)))
    assert batch.image.shape == (9, 3, 1, 1) and sorted(batch.image_path) == sorted(dataset.paths)
    batch = dataset.collate_fn(dataset.__getitems__(indices))
    real = datamodule.train_data.collate_fn([datamodule.train_data[i] for i in indices])
    assert type(batch) is type(real) and batch.image.shape == (3, 3, 1, 1)
    assert batch.image_path == real.image_path and batch.category == real.category
    assert torch.equal(batch.class_index, real.class_index) and torch.equal(batch.gt_label, real.gt_label)


def _fit(root: Path, run_dir: Path, make_model=tiny_model, **model_args):
    seed_everything(0)
    model, datamodule = make_model(**model_args), tiny_datamodule(root)
    # 9 training images in 3 batches of 3: the backbone's CPU kernels differ in the last bits for a batch of one.
    datamodule.train_batch_size = 3
    tiny_engine(run_dir).fit(model=model, datamodule=datamodule)
    return model, datamodule


@pytest.mark.parametrize("make_model", [tiny_model, tiny_uniad], ids=["HVQTrans", "UniAD"])
def test_fit_with_the_cache_trains_exactly_like_without(
    make_model, tiny_mvtec_root: Path, tmp_path: Path, caplog
) -> None:
    plain, _ = _fit(tiny_mvtec_root, tmp_path / "plain", make_model)
    with caplog.at_level(logging.INFO):
        cached, datamodule = _fit(
            tiny_mvtec_root, tmp_path / "cached", make_model, fast_training=FastTraining(feature_cache=True)
        )
    assert "Feature cache (memory, float32): 9 images, 9 computed" in caplog.text
    assert "train_dataloader" not in vars(datamodule)  # the datamodule's own loader is back after fit
    assert cached.cached_training.cache is None  # memory freed
    expected = plain.model.state_dict()
    for name, tensor in cached.model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)


def test_train_mode_backbone_disables_the_cache_with_a_warning(tiny_mvtec_root: Path, caplog) -> None:
    datamodule = tiny_datamodule(tiny_mvtec_root)
    datamodule.setup()
    train_data = datamodule.train_data
    module = SimpleNamespace(
        trainer=SimpleNamespace(datamodule=datamodule),
        model=SimpleNamespace(feature_extractor=SimpleNamespace(train_mode=True)),
    )
    cached_training = CachedTraining("disk")
    with caplog.at_level(logging.WARNING):
        cached_training.start(module)
    assert "Feature cache disabled: the backbone is in train mode" in caplog.text
    assert cached_training.cache is None and datamodule.train_data is train_data
    assert "train_dataloader" not in vars(datamodule)
    assert cached_training.features(SimpleNamespace(image_path=["a.png"]), torch.device("cpu")) is None


def test_disk_cache_serves_the_features_of_the_real_images_and_is_reused(tiny_mvtec_root, tmp_path, caplog) -> None:
    datamodule = tiny_datamodule(tiny_mvtec_root)
    datamodule.setup()
    model = tiny_model()
    trainer = SimpleNamespace(datamodule=datamodule, world_size=1, is_global_zero=True)
    module = SimpleNamespace(trainer=trainer, model=model.model, pre_processor=model.pre_processor, device=model.device)
    real = datamodule.train_data.collate_fn([datamodule.train_data[i] for i in range(3)])
    with torch.no_grad():
        expected = model.model.feature_extractor(model.pre_processor.transform(real.image))
    for run in ("first", "second"):
        caplog.clear()
        cached_training = CachedTraining("disk", tmp_path / "cache", "float16")
        with caplog.at_level(logging.INFO):
            cached_training.start(module)
        computed = 9 if run == "first" else 0
        assert f"9 images, {computed} computed, {9 - computed} reused" in caplog.text
        assert isinstance(datamodule.train_dataloader().dataset, CachedFeatureDataset)
        features = cached_training.features(real, model.device)
        assert features.dtype == torch.float32
        torch.testing.assert_close(features, expected, rtol=1e-3, atol=1e-3)  # stored as float16
        cached_training.stop()
        assert isinstance(datamodule.train_dataloader().dataset, type(datamodule.train_data))

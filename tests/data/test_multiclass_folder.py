# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""MultiClassFolder: class indices, class names and splits on fake MVTec trees."""

from pathlib import Path

import numpy as np
import torch
from anomalib.data.datasets.image.mvtecad import CATEGORIES as MVTEC_CATEGORIES
from PIL import Image

from anomalib_hvq.data import MultiClassFolder, MultiClassImageBatch, MVTec


def _datamodule(root: Path, **kwargs: object) -> MultiClassFolder:
    kwargs = {"num_workers": 0, "train_batch_size": 8, "eval_batch_size": 8, "seed": 0, **kwargs}
    return MultiClassFolder(root, **kwargs)


def _category_of(path: str, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).parts[0]


def _paths(dataset: object) -> set[str]:
    return set(dataset.samples.image_path)


def test_batches_carry_class_index_of_their_folder(fake_mvtec15_root: Path) -> None:
    datamodule = _datamodule(fake_mvtec15_root)
    datamodule.setup()
    names = datamodule.class_names
    assert names == sorted(MVTEC_CATEGORIES)
    seen = set()
    for loader in (datamodule.train_dataloader(), datamodule.val_dataloader(), datamodule.test_dataloader()):
        for batch in loader:
            assert isinstance(batch, MultiClassImageBatch)
            assert batch.class_index.shape == (len(batch.image_path),)
            for path, index, category in zip(batch.image_path, batch.class_index.tolist(), batch.category, strict=True):
                assert _category_of(path, fake_mvtec15_root) == category == names[index]
                seen.add(category)
    assert seen == set(MVTEC_CATEGORIES)


def test_class_names_sorted_stable_and_known_before_setup(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    a = _datamodule(tiny_mvtec_root, categories=["grid", "bottle", "carpet"])
    b = _datamodule(tiny_mvtec_root, categories=["carpet", "grid", "bottle", "grid"])
    assert a.class_names == b.class_names == ["bottle", "carpet", "grid"]
    assert _datamodule(tiny_mvtec_root).class_names == ["bottle", "carpet", "grid"]
    # Fixed datasets know their names without any file on disk.
    assert MVTec(root=tmp_path / "nothing_here").class_names == sorted(MVTEC_CATEGORIES)
    assert MVTec(root=tmp_path / "nothing_here", categories=["zipper", "bottle"]).class_names == ["bottle", "zipper"]


def test_subset_of_categories_indexes_the_subset(tiny_mvtec_root: Path) -> None:
    datamodule = _datamodule(tiny_mvtec_root, categories=["grid", "bottle"], val_split_mode="none")
    datamodule.setup()
    batch = next(iter(datamodule.test_dataloader()))
    categories = {
        (_category_of(p, tiny_mvtec_root), int(i)) for p, i in zip(batch.image_path, batch.class_index, strict=True)
    }
    assert categories <= {("bottle", 0), ("grid", 1)}
    assert {c for c, _ in categories} == {"bottle", "grid"}
    assert set(datamodule.train_data.samples.category) == {"bottle", "grid"}


def test_default_validation_is_held_out_normal_train_images_per_category(fake_mvtec15_root: Path) -> None:
    full = _datamodule(fake_mvtec15_root, val_split_mode="none")
    full.setup()
    datamodule = _datamodule(fake_mvtec15_root)
    datamodule.setup()
    train, val = _paths(datamodule.train_data), _paths(datamodule.val_data)
    assert not train & val
    assert train | val == _paths(full.train_data)
    assert _paths(datamodule.test_data) == _paths(full.test_data)  # nothing selected on the test set
    assert (datamodule.val_data.samples.label_index == 0).all()
    assert datamodule.val_data.samples.groupby("category").size().to_dict() == dict.fromkeys(MVTEC_CATEGORIES, 1)


def test_split_is_reproducible_for_a_seed(fake_mvtec15_root: Path) -> None:
    def val_paths(seed: int) -> set[str]:
        datamodule = _datamodule(fake_mvtec15_root, seed=seed)
        datamodule.setup()
        return _paths(datamodule.val_data)

    assert val_paths(0) == val_paths(0)
    assert val_paths(0) != val_paths(1)


def test_from_test_validation_keeps_both_labels_per_category(tiny_mvtec_root: Path) -> None:
    datamodule = _datamodule(tiny_mvtec_root, val_split_mode="from_test", val_split_ratio=0.5)
    datamodule.setup()
    groups = datamodule.val_data.samples.groupby(["category", "label_index"]).size()
    assert len(groups) == 6  # 3 categories x {normal, anomalous}
    assert not _paths(datamodule.val_data) & _paths(datamodule.test_data)
    batch = next(iter(datamodule.val_dataloader()))
    assert batch.class_index is not None


def test_synthetic_validation_keeps_class_fields(tiny_mvtec_root: Path) -> None:
    datamodule = _datamodule(tiny_mvtec_root, val_split_mode="synthetic", val_split_ratio=0.5)
    datamodule.setup()
    samples = datamodule.val_data.samples
    assert set(samples.label_index) == {0, 1}
    assert set(samples.category) == {"bottle", "carpet", "grid"}
    batch = next(iter(datamodule.val_dataloader()))
    names = datamodule.class_names
    assert [names[i] for i in batch.class_index.tolist()] == batch.category
    anomalous = batch.gt_label.bool()
    assert anomalous.any()
    assert all(batch.gt_mask[i].sum() > 0 for i in torch.nonzero(anomalous).flatten())


def test_grey_rgba_and_mixed_sizes_load_as_rgb(tmp_path: Path) -> None:
    category = tmp_path / "mixed"
    (category / "train" / "good").mkdir(parents=True)
    (category / "test" / "bad").mkdir(parents=True)
    (category / "test" / "good").mkdir(parents=True)
    (category / "ground_truth" / "bad").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8), "L").save(category / "train/good/grey.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8), "RGBA").save(category / "train/good/rgba.png")
    Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(category / "train/good/wide.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(category / "test/bad/000.png")
    Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8), "L").save(category / "test/good/000.png")
    # A mask saved at half the image size is resized to the image.
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    Image.fromarray(mask).save(category / "ground_truth/bad/000_mask.png")
    datamodule = _datamodule(tmp_path, val_split_mode="none", train_batch_size=3)
    datamodule.setup()
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.image.shape == (3, 3, 64, 64)
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.image.shape == (2, 3, 64, 64)
    assert batch.gt_mask.shape == (2, 64, 64)
    assert batch.gt_mask.sum(dim=(1, 2)).tolist() == [16 * 16, 0]  # bad/000.png sorts before good/


def test_workers_default_to_at_most_the_cpus_the_process_may_use(tiny_mvtec_root: Path, monkeypatch) -> None:
    monkeypatch.setattr("anomalib_hvq.data.multiclass_folder.available_cpus", lambda: 2)
    assert MultiClassFolder(root=tiny_mvtec_root).num_workers == 2  # the default 8, on a 2-core machine
    assert MVTec(root=tiny_mvtec_root).num_workers == 2
    assert MultiClassFolder(root=tiny_mvtec_root, num_workers=1).num_workers == 1

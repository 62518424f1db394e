# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""MultiClassImageItem / MultiClassImageBatch survive anomalib's batch code paths."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.post_processing import PostProcessor
from anomalib.visualization import ImageVisualizer
from lightning.pytorch.utilities import move_data_to_device
from PIL import Image as PILImage
from torchvision.tv_tensors import Image, Mask

from anomalib_hvq.data import (
    MultiClassImageBatch,
    MultiClassImageItem,
    NumpyMultiClassImageBatch,
    NumpyMultiClassImageItem,
)


def _item(class_index: int, category: str, size: int = 16, anomalous: bool = False) -> MultiClassImageItem:
    mask = torch.zeros(size, size, dtype=torch.uint8)
    if anomalous:
        mask[2:6, 2:6] = 1
    return MultiClassImageItem(
        image=Image(torch.rand(3, size, size)),
        gt_label=torch.tensor(int(anomalous)),
        gt_mask=Mask(mask),
        image_path=f"/data/{category}/test/x/{class_index}.png",
        class_index=class_index,
        category=category,
    )


@pytest.fixture
def batch() -> MultiClassImageBatch:
    items = [_item(2, "grid"), _item(0, "bottle", anomalous=True), _item(1, "carpet")]
    return MultiClassImageBatch.collate(items)


def test_collate_stacks_class_fields(batch: MultiClassImageBatch) -> None:
    assert isinstance(batch, MultiClassImageBatch)
    assert batch.class_index.dtype == torch.long
    assert batch.class_index.tolist() == [2, 0, 1]
    assert batch.category == ["grid", "bottle", "carpet"]
    assert batch.image.shape == (3, 3, 16, 16)


def test_item_fields_are_normalised() -> None:
    item = MultiClassImageItem(image=torch.rand(3, 4, 4), class_index=np.int64(3), category="wood")
    assert item.class_index.shape == ()
    assert item.class_index.dtype == torch.long
    assert item.class_index.item() == 3
    assert MultiClassImageItem(image=torch.rand(3, 4, 4)).class_index is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"class_index": 1.5}, TypeError),
        ({"class_index": torch.tensor([True])}, TypeError),
        ({"class_index": [1, 2]}, ValueError),
        ({"category": 3}, TypeError),
    ],
)
def test_item_rejects_bad_class_fields(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"class_index|category"):
        MultiClassImageItem(image=torch.rand(3, 4, 4), **kwargs)


def test_batch_rejects_bare_string_category() -> None:
    # A str is a sequence; silently accepting it would give one category per character.
    with pytest.raises(TypeError, match="list of str"):
        MultiClassImageBatch(image=torch.rand(2, 3, 4, 4), category="ab")
    with pytest.raises(ValueError, match=r"\(B,\)"):
        MultiClassImageBatch(image=torch.rand(2, 3, 4, 4), class_index=torch.zeros(2, 2, dtype=torch.long))


def test_update_and_replace_keep_class_fields(batch: MultiClassImageBatch) -> None:
    copy = batch.update(in_place=False, pred_score=torch.tensor([0.1, 0.9, 0.2]))
    assert isinstance(copy, MultiClassImageBatch)
    assert copy.class_index.tolist() == [2, 0, 1]
    assert batch.pred_score is None
    batch.update(pred_score=torch.tensor([0.1, 0.9, 0.2]))
    assert batch.category == ["grid", "bottle", "carpet"]
    replaced = dataclasses.replace(batch, class_index=torch.tensor([5, 6, 7]))
    assert replaced.class_index.tolist() == [5, 6, 7]
    assert replaced.category == batch.category
    batch.class_index = [4, 4, 4]  # assignment is validated like anomalib's fields
    assert batch.class_index.dtype == torch.long


def test_iteration_yields_items_with_their_class(batch: MultiClassImageBatch) -> None:
    items = list(batch)
    assert all(isinstance(item, MultiClassImageItem) for item in items)
    assert [(int(item.class_index), item.category) for item in items] == [(2, "grid"), (0, "bottle"), (1, "carpet")]


def test_to_numpy_keeps_class_fields(batch: MultiClassImageBatch) -> None:
    numpy_batch = batch.to_numpy()
    assert isinstance(numpy_batch, NumpyMultiClassImageBatch)
    np.testing.assert_array_equal(numpy_batch.class_index, [2, 0, 1])
    assert numpy_batch.category == ["grid", "bottle", "carpet"]
    numpy_items = list(numpy_batch)
    assert isinstance(numpy_items[1], NumpyMultiClassImageItem)
    assert int(numpy_items[1].class_index) == 0
    assert numpy_items[1].category == "bottle"


def test_device_transfer_keeps_class_fields(batch: MultiClassImageBatch) -> None:
    moved = move_data_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, MultiClassImageBatch)
    assert moved.class_index.tolist() == [2, 0, 1]
    assert moved.category == ["grid", "bottle", "carpet"]


def test_collate_resizes_mixed_sizes_and_keeps_class_fields() -> None:
    items = [_item(0, "bottle", size=16, anomalous=True), _item(1, "carpet", size=24)]
    batch = MultiClassImageBatch.collate(items)
    assert batch.image.shape == (2, 3, 24, 24)
    assert batch.gt_mask.shape == (2, 24, 24)
    assert batch.gt_mask[0].sum() > 0
    assert batch.class_index.tolist() == [0, 1]


def test_post_processor_and_visualizer_accept_batch(batch: MultiClassImageBatch, tmp_path: Path) -> None:
    # The visualizer reads the original image from image_path.
    paths = [tmp_path / f"{index}.png" for index in range(3)]
    for path in paths:
        PILImage.new("RGB", (16, 16)).save(path)
    batch.update(
        pred_score=torch.tensor([0.1, 0.9, 0.2]),
        anomaly_map=torch.rand(3, 16, 16),
        image_path=[str(path) for path in paths],
    )
    post_processor = PostProcessor()
    post_processor.post_process_batch(batch)
    assert batch.pred_label is not None
    assert batch.pred_mask is not None
    assert batch.class_index.tolist() == [2, 0, 1]
    images = ImageVisualizer().visualize(batch)
    assert len(images) == 3
    assert all(image is not None for image in images)

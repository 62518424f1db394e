# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Dataset over a multi-class sample table, yielding :class:`MultiClassImageItem`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from anomalib import TaskType
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import LabelName
from pandas import DataFrame
from torchvision.transforms.v2 import InterpolationMode, Transform
from torchvision.transforms.v2.functional import resize
from torchvision.tv_tensors import Mask

from anomalib_hvq.data.image_io import read_image, read_mask
from anomalib_hvq.data.items import MultiClassImageBatch, MultiClassImageItem


class MultiClassDataset(AnomalibDataset):
    """Images of several categories with their class index.

    The sample table must hold anomalib's columns (``image_path``, ``split``, ``label_index``,
    ``mask_path``) plus ``category`` and ``class_index`` (see
    :func:`anomalib_hvq.data.samples.make_multiclass_samples`). Subsets made by anomalib's
    ``subsample``/``random_split``/``+`` keep these columns, hence the class fields.

    Items: ``image`` ``(3, H, W)`` float in ``[0, 1]`` (any bit depth; grey and RGBA files are
    converted to RGB by :func:`~anomalib_hvq.data.image_io.read_image`), ``gt_mask`` ``(H, W)``
    (zeros for normal images; masks whose size differs from the image are resized with nearest
    neighbour), ``gt_label``, ``class_index``, ``category``.

    Args:
        samples: Sample table.
        augmentations: Transform applied jointly to image and mask.

    """

    def __init__(self, samples: DataFrame, augmentations: Transform | None = None) -> None:
        super().__init__(augmentations=augmentations)
        self.samples = samples

    def __getitem__(self, index: int) -> MultiClassImageItem:
        """Read sample ``index``; a bad file raises an error naming it (see :mod:`~anomalib_hvq.data.image_io`)."""
        sample = self.samples.iloc[index]
        image = read_image(sample.image_path, as_tensor=True)
        gt_mask = None
        if self.task == TaskType.SEGMENTATION:
            if sample.label_index == LabelName.ABNORMAL:
                gt_mask = read_mask(sample.mask_path, as_tensor=True)
                if gt_mask.shape[-2:] != image.shape[-2:]:
                    # Mismatched sizes would break joint augmentation and collation.
                    size = list(image.shape[-2:])
                    gt_mask = Mask(resize(gt_mask[None], size, interpolation=InterpolationMode.NEAREST)[0])
            else:
                gt_mask = Mask(torch.zeros(image.shape[-2:], dtype=torch.uint8))
        if self.augmentations is not None:
            if gt_mask is None:
                image = self.augmentations(image)
            else:
                image, gt_mask = self.augmentations(image, gt_mask)
        mask_path = sample.mask_path if isinstance(sample.mask_path, str) else None
        return MultiClassImageItem(
            image=image,
            gt_mask=gt_mask,
            gt_label=torch.tensor(int(sample.label_index)),
            image_path=sample.image_path,
            mask_path=mask_path,
            class_index=int(sample.class_index),
            category=str(sample.category),
        )

    @property
    def collate_fn(self) -> Callable[[list[MultiClassImageItem]], MultiClassImageBatch]:
        """Collate items into a :class:`MultiClassImageBatch`."""
        return MultiClassImageBatch.collate

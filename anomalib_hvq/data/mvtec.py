# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""MVTec AD, all categories in one datamodule."""

from __future__ import annotations

import logging
from pathlib import Path

from anomalib.data.datamodules.image import mvtecad
from anomalib.data.datasets.image.mvtecad import CATEGORIES, IMG_EXTENSIONS
from anomalib.data.utils import TestSplitMode, ValSplitMode, download_and_extract
from torchvision.transforms.v2 import Transform

from anomalib_hvq.data.download import download_or_explain
from anomalib_hvq.data.errors import DatasetNotFoundError
from anomalib_hvq.data.multiclass_folder import MultiClassFolder

logger = logging.getLogger(__name__)

MVTEC_PAGE = "https://www.mvtec.com/company/research/datasets/mvtec-ad"


class MVTec(MultiClassFolder):
    """MVTec AD with all (or some) of its 15 categories in one datamodule.

    ``prepare_data`` (called by the Engine) runs anomalib's MVTec AD download when a selected
    category folder is missing under ``root``; offline, it raises a
    :class:`~anomalib_hvq.data.errors.DatasetNotFoundError` saying where to place the data.
    The default validation split holds out 10 % of each category's normal training images
    instead of anomalib's ``same_as_test`` (see :class:`MultiClassFolder`).

    Args:
        root: Folder holding (or receiving) ``bottle/``, ``cable/``, ...
        categories: Subset of the 15 categories; ``None`` uses all.
        train_batch_size: Training batch size.
        eval_batch_size: Validation/test batch size.
        num_workers: Data loader workers, at most the CPUs this process may use.
        train_augmentations: Augmentations of training images.
        val_augmentations: Augmentations of validation images.
        test_augmentations: Augmentations of test images.
        augmentations: Augmentations of every subset without its own.
        test_split_mode: See :class:`MultiClassFolder`.
        test_split_ratio: See :class:`MultiClassFolder`.
        val_split_mode: See :class:`MultiClassFolder`.
        val_split_ratio: See :class:`MultiClassFolder`.
        seed: Seed of the random splits.

    Example:
        >>> MVTec(categories=["screw", "bottle"]).class_names
        ['bottle', 'screw']

    """

    KNOWN_CATEGORIES = CATEGORIES

    def __init__(
        self,
        root: Path | str = "./datasets/MVTecAD",
        categories: list[str] | None = None,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.FROM_TRAIN,
        val_split_ratio: float = 0.1,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            root=root,
            categories=categories,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
            extensions=IMG_EXTENSIONS,
        )

    def prepare_data(self) -> None:
        """Download MVTec AD with anomalib's downloader if a selected category is missing.

        Raises:
            DatasetNotFoundError: The download failed (e.g. offline) or the archive lacks a
                selected category.

        """
        missing = [c for c in self.class_names if not (self.root / c).is_dir()]
        if not missing:
            logger.info("Found MVTec AD at %s.", self.root)
            return
        layout = "the extracted archive: one folder per category, e.g. 'bottle/train/good/000.png'"
        download_or_explain(
            lambda: download_and_extract(self.root, mvtecad.DOWNLOAD_INFO),
            self.root,
            mvtecad.DOWNLOAD_INFO,
            "MVTec AD",
            MVTEC_PAGE,
            layout,
        )
        if still_missing := [c for c in missing if not (self.root / c).is_dir()]:
            msg = f"MVTec AD at '{self.root}' lacks the categories {still_missing} after extraction."
            raise DatasetNotFoundError(msg)

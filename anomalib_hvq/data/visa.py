# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""VisA, all categories in one datamodule."""

from __future__ import annotations

import logging
from pathlib import Path

from anomalib.data.datamodules.image import visa as anomalib_visa
from anomalib.data.datasets.image.visa import CATEGORIES, EXTENSIONS
from anomalib.data.utils import TestSplitMode, ValSplitMode
from torchvision.transforms.v2 import Transform

from anomalib_hvq.data.download import download_or_explain
from anomalib_hvq.data.errors import DatasetNotFoundError
from anomalib_hvq.data.multiclass_folder import MultiClassFolder

logger = logging.getLogger(__name__)

VISA_PAGE = "https://github.com/amazon-science/spot-diff"


class Visa(MultiClassFolder):
    """VisA with all (or some) of its 12 categories in one datamodule.

    ``prepare_data`` (called by the Engine) reuses anomalib's VisA logic: it downloads and
    extracts the archive into ``root`` when needed and converts it with the official 1-class
    split into MVTec layout under ``root/visa_pytorch``, which is then read like
    :class:`MultiClassFolder`. Offline, it raises a
    :class:`~anomalib_hvq.data.errors.DatasetNotFoundError` saying where to place the data.

    Note:
        anomalib also exports a ``Visa`` datamodule (one category); on the command line use
        ``--data anomalib_hvq.data.Visa`` if the short name is ambiguous.

    Args:
        root: Folder holding (or receiving) the extracted VisA archive.
        categories: Subset of the 12 categories; ``None`` uses all.
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
        >>> Visa(categories=["pcb1", "candle"]).class_names
        ['candle', 'pcb1']

    """

    KNOWN_CATEGORIES = CATEGORIES

    def __init__(
        self,
        root: Path | str = "./datasets/visa",
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
            extensions=EXTENSIONS,
        )

    @property
    def data_root(self) -> Path:
        """The converted MVTec-layout copy, ``root/visa_pytorch``."""
        return self.root / "visa_pytorch"

    def prepare_data(self) -> None:
        """Download and/or convert VisA with anomalib's logic if a selected category is missing.

        Raises:
            DatasetNotFoundError: The download or the conversion failed (e.g. offline).

        """
        missing = [c for c in self.class_names if not (self.data_root / c).is_dir()]
        if not missing:
            logger.info("Found the converted VisA split at %s.", self.data_root)
            return
        # anomalib's Visa.prepare_data converts an extracted copy, or downloads then converts;
        # either way it writes every category at once.
        single = anomalib_visa.Visa(root=self.root, category=missing[0])
        layout = (
            "the extracted VisA_20220922.tar: one folder per category plus 'split_csv/1cls.csv'; "
            "it is converted into 'visa_pytorch/' on first use"
        )
        download_or_explain(single.prepare_data, self.root, anomalib_visa.DOWNLOAD_INFO, "VisA", VISA_PAGE, layout)
        if still_missing := [c for c in missing if not (self.data_root / c).is_dir()]:
            msg = f"VisA at '{self.root}' lacks the categories {still_missing} after preparation."
            raise DatasetNotFoundError(msg)

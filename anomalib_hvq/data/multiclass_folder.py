# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Unified datamodule over a folder of several MVTec-layout categories."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from anomalib.data import AnomalibDataModule
from anomalib.data.utils import LabelName, Split, TestSplitMode, ValSplitMode, split_by_label
from lightning.pytorch.utilities.types import EVAL_DATALOADERS
from torchvision.transforms.v2 import Transform

from anomalib_hvq.data.dataset import MultiClassDataset
from anomalib_hvq.data.errors import DatasetNotFoundError, SplitError, UnknownCategoryError
from anomalib_hvq.data.samples import make_multiclass_samples
from anomalib_hvq.data.split_checks import empty_validation_error, no_validation_error, scoring_problem
from anomalib_hvq.data.splits import make_synthetic_split, split_per_category

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".PNG", ".jpg", ".JPG", ".jpeg", ".JPEG", ".bmp", ".BMP", ".tif", ".tiff")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, as PyTorch's loader check uses)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class MultiClassFolder(AnomalibDataModule):
    """One datamodule for all categories of a folder in MVTec AD layout.

    Layout: ``root/<category>/train/good/*``, ``root/<category>/test/{good,<defect>}/*`` and
    ``root/<category>/ground_truth/<defect>/<image stem>_mask.png``. Every category is parsed
    with anomalib's MVTec parser; batches are :class:`MultiClassImageBatch` whose ``class_index``
    is the category's position in :attr:`class_names`.

    Validation split: the default ``val_split_mode="from_train"`` holds out ``val_split_ratio``
    of each category's normal training images (stratified per category). Nothing is selected on
    the test set; with only normal validation images, anomalib's adaptive thresholds fall back to
    the largest normal validation score (anomalib warns about this). ``"synthetic"`` instead
    makes Perlin anomalies from those held-out images, and ``"same_as_test"`` (anomalib's
    MVTec default) fits thresholds on the test set itself; both keep the class fields. A
    validation split that comes out empty (fewer than 2 images per category to hold out from) is
    refused at setup, ``"none"`` when validation data is requested: the post-processor's
    statistics would be ``NaN``. A test set without both normal and anomalous images, for which
    AUROC is undefined, is warned about at setup and refused by :meth:`test_dataloader`.

    Args:
        root: Folder with one sub-folder per category.
        categories: Categories to use; ``None`` uses every sub-folder holding a ``train`` folder.
            Order and duplicates do not matter: :attr:`class_names` is the sorted set.
        train_batch_size: Training batch size.
        eval_batch_size: Validation/test batch size.
        num_workers: Data loader workers, at most the CPUs this process may use (so a 2-core machine gets 2,
            not the default 8 and PyTorch's warning about it).
        train_augmentations: Augmentations of training images.
        val_augmentations: Augmentations of validation images.
        test_augmentations: Augmentations of test images.
        augmentations: Augmentations of every subset without its own.
        test_split_mode: ``"from_dir"`` (test folders), ``"synthetic"`` or ``"none"``.
        test_split_ratio: Fraction of normal training images moved to the test set when a
            test set has no normal images.
        val_split_mode: ``"from_train"``, ``"from_test"``, ``"same_as_test"``, ``"synthetic"``
            or ``"none"``.
        val_split_ratio: Fraction of each (category, label) group moved to validation.
        seed: Seed of the random splits.
        extensions: Accepted image suffixes.

    Example:
        >>> datamodule = MultiClassFolder(root="datasets/my_parts", train_batch_size=16, num_workers=2)
        >>> datamodule.class_names  # the sub-folders holding a train/ folder, sorted  # doctest: +SKIP
        ['nut', 'screw']

    """

    # Category names known without looking at the disk (for fixed datasets such as MVTec AD).
    KNOWN_CATEGORIES: ClassVar[tuple[str, ...] | None] = None

    def __init__(
        self,
        root: Path | str,
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
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        super().__init__(
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=min(num_workers, available_cpus()),
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.root = Path(root)
        self.extensions = tuple(extensions)
        if isinstance(categories, str):  # a lone name would otherwise be split into letters
            categories = [categories]
        self.categories = None if categories is None else sorted(set(categories))
        # Used by anomalib for the results folder: results/<model>/<name>/<category>/.
        self.category = "all" if self.categories is None else "-".join(self.categories)
        if self.KNOWN_CATEGORIES is not None:
            _ = self.class_names  # fail fast on unknown names

    @property
    def name(self) -> str:
        """Name of the root folder.

        anomalib's visualizer keeps the part of an image path after this name, so the output
        folders keep ``<category>/test/<defect>`` and same-named images of different categories
        do not overwrite each other.
        """
        return self.root.resolve().name or self.__class__.__name__

    @property
    def data_root(self) -> Path:
        """Folder that holds the category sub-folders."""
        return self.root

    @property
    def available_categories(self) -> list[str]:
        """Sorted names of all categories of the dataset (not only the selected ones).

        Raises:
            DatasetNotFoundError: The categories are read from disk and ``data_root`` is missing
                or holds no category.

        """
        if self.KNOWN_CATEGORIES is not None:
            return sorted(self.KNOWN_CATEGORIES)
        if not self.data_root.is_dir():
            msg = (
                f"Dataset root '{self.data_root}' does not exist. Pass the folder that holds one "
                "sub-folder per category."
            )
            raise DatasetNotFoundError(msg)
        found = sorted(
            p.name
            for p in self.data_root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "train").is_dir()
        )
        if not found:
            msg = (
                f"No category found in '{self.data_root}': expected sub-folders laid out as "
                "'<category>/train/good/*.png' (MVTec AD layout)."
            )
            raise DatasetNotFoundError(msg)
        return found

    @property
    def class_names(self) -> list[str]:
        """Sorted names of the selected categories; ``class_index`` is the position in this list.

        Raises:
            UnknownCategoryError: A requested category is not in :attr:`available_categories`.

        """
        available = self.available_categories
        if self.categories is None:
            return available
        unknown = set(self.categories) - set(available)
        if unknown:
            raise UnknownCategoryError(unknown, available, f"{self.__class__.__name__} at '{self.data_root}'")
        return list(self.categories)

    def _setup(self, _stage: str | None = None) -> None:
        samples = make_multiclass_samples(self.data_root, self.class_names, self.extensions)
        for split in (Split.TRAIN, Split.TEST):
            subset = samples[samples.split == split.value].reset_index(drop=True)
            subset.attrs["task"] = samples.attrs["task"]
            setattr(self, f"{split.value}_data", MultiClassDataset(subset))

    def _split_test(self) -> None:
        if self.test_split_mode not in {TestSplitMode.FROM_DIR, TestSplitMode.SYNTHETIC}:
            super()._create_test_split()
            return
        normal, anomalous = split_by_label(self.test_data)
        if len(normal) == 0:
            self.train_data, normal = split_per_category(self.train_data, self.test_split_ratio, self.seed)
        if self.test_split_mode == TestSplitMode.FROM_DIR:
            self.test_data = anomalous + normal
        else:
            self.test_data = make_synthetic_split(normal, self.seed)

    def _create_test_split(self) -> None:
        """Like anomalib's, but per category and keeping the class columns in synthetic mode."""
        self._split_test()
        problem = scoring_problem(self.test_data.samples)
        if problem is not None:
            logger.warning("%s. Training works; testing will fail.", problem)

    def _create_val_split(self) -> None:
        """Like anomalib's, but stratified per category and keeping the class columns."""
        if self.val_split_mode == ValSplitMode.FROM_TRAIN:
            self.train_data, self.val_data = split_per_category(self.train_data, self.val_split_ratio, self.seed)
        elif self.val_split_mode == ValSplitMode.FROM_TEST:
            self.test_data, self.val_data = split_per_category(self.test_data, self.val_split_ratio, self.seed)
        elif self.val_split_mode == ValSplitMode.SYNTHETIC:
            self.train_data, normal = split_per_category(self.train_data, self.val_split_ratio, self.seed)
            self.val_data = make_synthetic_split(normal, self.seed)
        else:
            super()._create_val_split()
        self._check_validation_set()

    def _check_validation_set(self) -> None:
        """Refuse an empty validation split, naming the images per category it could draw from."""
        if self.val_split_mode in {ValSplitMode.NONE, ValSplitMode.FROM_DIR} or len(self.val_data) > 0:
            return
        if self.val_split_mode in {ValSplitMode.FROM_TEST, ValSplitMode.SAME_AS_TEST}:
            source, name = self.test_data.samples, "test images"
        else:
            samples = self.train_data.samples
            source, name = samples[samples.label_index == LabelName.NORMAL], "normal training images"
        raise empty_validation_error(self.val_split_mode.value, self.val_split_ratio, source, name)

    def val_dataloader(self) -> EVAL_DATALOADERS:
        """Return anomalib's validation loader; refuse ``val_split_mode="none"`` with the fix in the message."""
        if not hasattr(self, "val_data"):
            raise no_validation_error()
        return super().val_dataloader()

    def test_dataloader(self) -> EVAL_DATALOADERS:
        """Return anomalib's test loader; refuse a test set without both normal and anomalous images."""
        problem = scoring_problem(self.test_data.samples)
        if problem is not None:
            raise SplitError(f"{problem}.")
        return super().test_dataloader()

    def predict_dataloader(self) -> EVAL_DATALOADERS:
        """Return the test images without the label check: predicting needs no labels."""
        return super().test_dataloader()

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Datamodule of the offline Textures demo data set."""

from __future__ import annotations

from pathlib import Path

from anomalib.data.utils import TestSplitMode, ValSplitMode
from torchvision.transforms.v2 import Transform

from anomalib_hvq.data.multiclass_folder import MultiClassFolder
from anomalib_hvq.data.textures.generator import CATEGORIES, ensure_textures


class Textures(MultiClassFolder):
    """Offline multi-class demo: real texture photos with realistic synthetic defects.

    Built on first use (``prepare_data`` or ``setup``) into ``root`` from CC0 photos shipped
    with scikit-image, in about 5 seconds, and reused while ``seed`` and the generator version
    are unchanged: 4 categories (``brick``, ``fundus``, ``grass``, ``gravel``), 256x256 RGB,
    per category 48 normal training images, 12 normal test images and 24 defective test
    images (4 each of blur, contamination, crack, hole, scratch, stain) with exact masks. See
    :mod:`anomalib_hvq.data.textures.generator`.

    Args:
        root: Folder to build the data set in (must be empty, missing, or built by Textures).
        categories: Subset of the 4 categories; ``None`` uses all.
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
        seed: Seed of the generated images and of the random splits.

    Example:
        >>> datamodule = Textures(root="./datasets/textures", train_batch_size=16, num_workers=1)
        >>> datamodule.class_names
        ['brick', 'fundus', 'grass', 'gravel']
        >>> datamodule.setup()  # builds the images on first use  # doctest: +SKIP

    """

    KNOWN_CATEGORIES = CATEGORIES

    def __init__(
        self,
        root: Path | str = "./datasets/textures",
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
        seed: int = 0,
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
            extensions=(".png",),
        )

    def prepare_data(self) -> None:
        """Generate the data set into ``root`` unless an up-to-date copy is there."""
        ensure_textures(self.root, seed=self.seed)

    def _setup(self, _stage: str | None = None) -> None:
        # setup() may be called without prepare_data() (e.g. outside a Trainer); the check is cheap.
        self.prepare_data()
        super()._setup(_stage)

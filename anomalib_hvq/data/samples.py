# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Sample tables of several MVTec-layout categories.

Each category is parsed by anomalib's own MVTec AD parser (:func:`make_mvtec_ad_dataset`) and
the tables are concatenated with two extra columns, ``category`` and ``class_index``. That parser
pairs masks with images by sort position and reports problems with generic pandas errors, so the
folder is checked first and every problem is reported with the file to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from anomalib.data.datasets.image.mvtecad import make_mvtec_ad_dataset
from anomalib.data.errors import MisMatchError

from anomalib_hvq.data.errors import (
    DatasetNotFoundError,
    EmptyCategoryError,
    MissingMaskError,
    OrphanMaskError,
)
from anomalib_hvq.data.file_check import check_image_files

NORMAL_LABEL = "good"


def _images(folder: Path, extensions: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in extensions) if folder.is_dir() else []


def _mask_stem(mask: Path) -> str:
    return mask.stem.removesuffix("_mask")


def check_category_folder(category: str, folder: Path, extensions: Sequence[str]) -> None:
    """Check one category folder before parsing it; raise a precise error for each problem.

    Args:
        category: Category name, used in messages.
        folder: ``<root>/<category>`` in MVTec layout.
        extensions: Accepted image suffixes, e.g. ``(".png", ".PNG")``.

    Raises:
        DatasetNotFoundError: ``folder`` does not exist.
        EmptyCategoryError: ``folder/train/good`` holds no image.
        MissingMaskError: A defective test image has no mask in ``ground_truth/<defect>``.
        OrphanMaskError: A mask matches no defective test image (or duplicates another mask).
        CorruptImageError: An image or mask is not a complete image file (header or length).

    """
    if not folder.is_dir():
        msg = (
            f"Category folder '{folder}' does not exist. For downloadable datasets call "
            "`datamodule.prepare_data()` first (the Engine does it); otherwise check `root`."
        )
        raise DatasetNotFoundError(msg)
    train = folder / "train" / NORMAL_LABEL
    if not _images(train, extensions):
        raise EmptyCategoryError(category, train, extensions)
    test_root, mask_root = folder / "test", folder / "ground_truth"
    # Mask folders without a test folder count too: their masks would shift anomalib's pairing.
    defects = sorted({p.name for base in (test_root, mask_root) if base.is_dir() for p in base.iterdir() if p.is_dir()})
    to_check = _images(train, extensions)
    for defect in defects:
        images = _images(test_root / defect, extensions)
        to_check += images
        if defect != NORMAL_LABEL:
            to_check += _check_masks(images, mask_root / defect, extensions)
    check_image_files(to_check)


def _check_masks(images: Sequence[Path], mask_folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Check that masks and defective images pair one to one by name; return the masks."""
    masks = _images(mask_folder, extensions)
    by_stem: dict[str, Path] = {}
    orphans = []
    for mask in masks:
        if _mask_stem(mask) in by_stem:
            orphans.append(mask)  # a second mask for the same image
        else:
            by_stem[_mask_stem(mask)] = mask
    missing = [image for image in images if image.stem not in by_stem]
    if missing:
        raise MissingMaskError(missing, mask_folder)
    image_stems = {image.stem for image in images}
    orphans += [mask for stem, mask in by_stem.items() if stem not in image_stems]
    if orphans:
        raise OrphanMaskError(sorted(orphans), images[0].parent if images else mask_folder)
    return masks


def make_multiclass_samples(data_root: Path, class_names: Sequence[str], extensions: Sequence[str]) -> pd.DataFrame:
    """Build the sample table of all categories.

    Args:
        data_root: Folder holding one MVTec-layout sub-folder per category.
        class_names: Sorted category names; ``class_index`` is the position in this list.
        extensions: Accepted image suffixes.

    Returns:
        anomalib's MVTec columns (``path``, ``split``, ``label``, ``image_path``, ``mask_path``,
        ``label_index``) plus ``category`` (str) and ``class_index`` (int); ``attrs["task"]`` is
        ``"segmentation"`` when any image has a mask, else ``"classification"``.

    """
    frames = []
    for class_index, category in enumerate(class_names):
        folder = data_root / category
        check_category_folder(category, folder, extensions)
        try:
            samples = make_mvtec_ad_dataset(folder, split=None, extensions=extensions)
        except MisMatchError as error:
            # Left after the checks above: names whose sort orders differ between images and masks.
            msg = (
                f"Cannot pair images and masks of category '{category}' in '{folder}': {error} Use "
                "mask names '<image stem>_mask.<ext>' for every defective image."
            )
            raise MisMatchError(msg) from error
        samples["category"] = category
        samples["class_index"] = class_index
        frames.append(samples)
    samples = pd.concat(frames, ignore_index=True)
    samples.attrs["task"] = "segmentation" if samples["mask_path"].notna().any() else "classification"
    return samples

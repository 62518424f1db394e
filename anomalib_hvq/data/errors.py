# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Exceptions raised for bad multi-class dataset input.

Each exception also derives from the built-in type a caller would expect (``FileNotFoundError``,
``ValueError``, ...), so generic ``except`` clauses keep working, and every message names the
offending path or value and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


class MultiClassDataError(Exception):
    """Base class of all data errors raised by ``anomalib_hvq.data``."""


class DatasetNotFoundError(MultiClassDataError, FileNotFoundError):
    """The dataset is not on disk and could not be downloaded."""

    @classmethod
    def for_download(
        cls,
        dataset: str,
        expected: Path,
        url: str,
        layout: str,
        cause: BaseException | None = None,
    ) -> DatasetNotFoundError:
        """Build the error for a dataset whose download failed or is impossible.

        Args:
            dataset: Human-readable dataset name, e.g. ``"MVTec AD"``.
            expected: Folder the data was expected in.
            url: Page where users get the dataset by hand.
            layout: One-line description of what must be placed at ``expected``.
            cause: The download exception, if any.

        """
        reason = f" (download failed: {type(cause).__name__}: {cause})" if cause is not None else ""
        return cls(
            f"{dataset} was not found at '{expected}' and could not be downloaded{reason}. "
            f"Download it from {url} and place it at '{expected}' ({layout}), "
            "or pass `root=` pointing to an existing copy.",
        )


class UnknownCategoryError(MultiClassDataError, ValueError):
    """A requested category does not exist in the dataset."""

    def __init__(self, unknown: Iterable[str], valid: Sequence[str], where: str) -> None:
        unknown = sorted(unknown)
        super().__init__(
            f"Unknown categor{'y' if len(unknown) == 1 else 'ies'} {unknown} for {where}. "
            f"Valid categories: {sorted(valid)}. Fix the `categories` argument.",
        )


class EmptyCategoryError(MultiClassDataError, RuntimeError):
    """A category folder holds no training images."""

    def __init__(self, category: str, folder: Path, extensions: Sequence[str]) -> None:
        super().__init__(
            f"Category '{category}' has no training images: found no files with extensions "
            f"{sorted(set(extensions))} in '{folder}'. Add normal images to that folder or drop "
            f"'{category}' from `categories`.",
        )


class MissingMaskError(MultiClassDataError, FileNotFoundError):
    """A defective test image has no ground-truth mask."""

    def __init__(self, images: Sequence[Path], mask_folder: Path) -> None:
        shown = ", ".join(f"'{p}'" for p in images[:5])
        more = f" and {len(images) - 5} more" if len(images) > 5 else ""
        super().__init__(
            f"No ground-truth mask for defective image(s) {shown}{more}. Expected "
            f"'{mask_folder}/<image stem>_mask.png' (or '<image stem>.png'). Add the mask(s) or move "
            "the image(s) out of the test folder.",
        )


class OrphanMaskError(MultiClassDataError, ValueError):
    """A ground-truth mask has no matching defective test image."""

    def __init__(self, masks: Sequence[Path], image_folder: Path) -> None:
        shown = ", ".join(f"'{p}'" for p in masks[:5])
        more = f" and {len(masks) - 5} more" if len(masks) > 5 else ""
        super().__init__(
            f"Ground-truth mask(s) {shown}{more} match no image in '{image_folder}'. Masks are paired "
            "with images by name ('<stem>.png' -> '<stem>_mask.png'); rename or remove them.",
        )


class CorruptImageError(MultiClassDataError, OSError):
    """An image or mask file cannot be decoded."""

    def __init__(self, path: Path | str, cause: BaseException | None = None) -> None:
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(
            f"Cannot read image file '{path}'{reason}. The file is corrupt, truncated or not an "
            "image; replace or delete it.",
        )


class UnsupportedImageError(MultiClassDataError, ValueError):
    """An image file decodes but has no RGB reading in ``[0, 1]`` (mode or value range)."""

    def __init__(self, reason: str, path: Path | str | None = None) -> None:
        self.reason = reason
        where = f"image file '{path}'" if path is not None else "the image"
        super().__init__(f"Cannot use {where}: {reason}.")


class SplitError(MultiClassDataError, ValueError):
    """A validation or test split cannot give meaningful numbers (empty, or one label only)."""

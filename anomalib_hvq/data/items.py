# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Items and batches that carry the object class of each image.

anomalib's :class:`~anomalib.data.ImageItem` / :class:`~anomalib.data.ImageBatch` know nothing
about object classes. A unified (multi-class) model needs one per image, so these subclasses add
two validated fields, following anomalib's own pattern (a generic field dataclass plus
torch/numpy validators):

- ``class_index``: item: 0-d ``long`` tensor; batch: ``(B,)`` ``long`` tensor. The position of
  the category in the datamodule's sorted ``class_names``.
- ``category``: item: ``str``; batch: ``list[str]`` of length ``B``.

Because they are ordinary dataclass fields, anomalib's collate (``ImageBatch.collate``),
``batch.update(...)``, ``dataclasses.replace``, iteration over items (visualizer), ``to_numpy``
and Lightning's device transfer all keep them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic

import numpy as np
import torch
from anomalib.data.dataclasses.generic import FieldDescriptor, PathT, T
from anomalib.data.dataclasses.numpy import NumpyImageBatch, NumpyImageItem
from anomalib.data.dataclasses.torch import ImageBatch, ImageItem

__all__ = [
    "MultiClassImageBatch",
    "MultiClassImageItem",
    "NumpyMultiClassImageBatch",
    "NumpyMultiClassImageItem",
]


@dataclass
class _ClassFields(Generic[T, PathT], ABC):
    """Generic class fields; ``T`` is the tensor/array type, ``PathT`` ``str`` or ``list[str]``."""

    # Descriptors as defaults are anomalib's mechanism for validating fields on every assignment.
    class_index: FieldDescriptor[T | None] = FieldDescriptor(validator_name="validate_class_index")  # noqa: RUF009
    category: FieldDescriptor[PathT | None] = FieldDescriptor(validator_name="validate_category")  # noqa: RUF009

    @staticmethod
    @abstractmethod
    def validate_class_index(class_index: T | None) -> T | None:
        """Validate the class index."""
        raise NotImplementedError

    @staticmethod
    @abstractmethod
    def validate_category(category: PathT | None) -> PathT | None:
        """Validate the category name(s)."""
        raise NotImplementedError


def _integer_indices(value: object, ndim: int, field: str) -> torch.Tensor | np.ndarray:
    """Return ``value`` as ``int64`` of ``ndim`` dims (0: item, 1: batch), or raise a clear error.

    Tensors stay tensors on their device (no host round trip when Lightning moves a batch to
    the GPU); anything else becomes a numpy array.
    """
    if isinstance(value, torch.Tensor):
        array: torch.Tensor | np.ndarray = value
        is_integer = not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
    else:
        array = np.asarray(value)
        is_integer = np.issubdtype(array.dtype, np.integer)
    if not is_integer:
        msg = f"{field} must hold integers, got dtype {array.dtype}."
        raise TypeError(msg)
    size = array.numel() if isinstance(array, torch.Tensor) else array.size
    if ndim == 0 and size != 1:
        msg = f"{field} of an item must be a single integer, got shape {tuple(array.shape)}."
        raise ValueError(msg)
    if ndim == 1 and array.ndim > 1:
        msg = f"{field} of a batch must have shape (B,), got {tuple(array.shape)}."
        raise ValueError(msg)
    # A batch of one collated by hand may arrive as a scalar, hence reshape(-1) for batches.
    array = array.reshape(()) if ndim == 0 else array.reshape(-1)
    return array.long() if isinstance(array, torch.Tensor) else array.astype(np.int64)


def _check_category(category: str | None) -> str | None:
    if category is not None and not isinstance(category, str):
        msg = f"category of an item must be a str, got {type(category).__name__}."
        raise TypeError(msg)
    return category


def _check_categories(categories: Sequence[str] | None) -> list[str] | None:
    if categories is None:
        return None
    # A bare string is a sequence too; accepting it would silently split it into characters.
    if isinstance(categories, str) or not all(isinstance(c, str) for c in categories):
        msg = f"category of a batch must be a list of str, got {categories!r}."
        raise TypeError(msg)
    return list(categories)


class _TorchItemClassValidator:
    @staticmethod
    def validate_class_index(class_index: torch.Tensor | int | None) -> torch.Tensor | None:
        """Return the class index as a 0-d ``long`` tensor."""
        if class_index is None:
            return None
        return torch.as_tensor(_integer_indices(class_index, 0, "class_index"))

    validate_category = staticmethod(_check_category)


class _TorchBatchClassValidator:
    @staticmethod
    def validate_class_index(class_index: torch.Tensor | Sequence[int] | None) -> torch.Tensor | None:
        """Return the class indices as a ``(B,)`` ``long`` tensor."""
        if class_index is None:
            return None
        return torch.as_tensor(_integer_indices(class_index, 1, "class_index"))

    validate_category = staticmethod(_check_categories)


class _NumpyItemClassValidator:
    @staticmethod
    def validate_class_index(class_index: np.ndarray | int | None) -> np.ndarray | None:
        """Return the class index as a 0-d ``int64`` array."""
        return None if class_index is None else np.asarray(_integer_indices(class_index, 0, "class_index"))

    validate_category = staticmethod(_check_category)


class _NumpyBatchClassValidator:
    @staticmethod
    def validate_class_index(class_index: np.ndarray | Sequence[int] | None) -> np.ndarray | None:
        """Return the class indices as a ``(B,)`` ``int64`` array."""
        return None if class_index is None else np.asarray(_integer_indices(class_index, 1, "class_index"))

    validate_category = staticmethod(_check_categories)


@dataclass
class NumpyMultiClassImageItem(_NumpyItemClassValidator, _ClassFields[np.ndarray, str], NumpyImageItem):
    """Numpy image item with ``class_index`` (0-d ``int64`` array) and ``category`` (``str``)."""


@dataclass
class NumpyMultiClassImageBatch(
    _NumpyBatchClassValidator,
    _ClassFields[np.ndarray, list[str]],
    NumpyImageBatch,
):
    """Numpy image batch with ``class_index`` of shape ``(B,)`` and ``category`` (``list[str]``)."""

    item_class: ClassVar[type[NumpyMultiClassImageItem]] = NumpyMultiClassImageItem


@dataclass
class MultiClassImageItem(_TorchItemClassValidator, _ClassFields[torch.Tensor, str], ImageItem):
    """Image item of a multi-class dataset.

    Fields beyond :class:`~anomalib.data.ImageItem`:
        class_index: 0-d ``long`` tensor, index of ``category`` in the datamodule's ``class_names``.
        category: Category name, e.g. ``"bottle"``.

    Example:
        >>> item = MultiClassImageItem(image=torch.rand(3, 8, 8), class_index=2, category="grid")
        >>> item.class_index
        tensor(2)

    """

    numpy_class: ClassVar[type[NumpyMultiClassImageItem]] = NumpyMultiClassImageItem


@dataclass
class MultiClassImageBatch(_TorchBatchClassValidator, _ClassFields[torch.Tensor, list[str]], ImageBatch):
    """Batch of :class:`MultiClassImageItem`.

    Fields beyond :class:`~anomalib.data.ImageBatch`:
        class_index: ``(B,)`` ``long`` tensor of class indices.
        category: ``list[str]`` of length ``B``.

    ``MultiClassImageBatch.collate`` (inherited) stacks items into a batch; images of different
    sizes are resized to the largest one by anomalib's collate.
    """

    item_class: ClassVar[type[MultiClassImageItem]] = MultiClassImageItem
    numpy_class: ClassVar[type[NumpyMultiClassImageBatch]] = NumpyMultiClassImageBatch

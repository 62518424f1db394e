# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Multi-class ("unified") data for anomalib: items with a class index and datamodules."""

from anomalib_hvq.data.dataset import MultiClassDataset
from anomalib_hvq.data.errors import (
    CorruptImageError,
    DatasetNotFoundError,
    EmptyCategoryError,
    MissingMaskError,
    MultiClassDataError,
    OrphanMaskError,
    SplitError,
    UnknownCategoryError,
    UnsupportedImageError,
)
from anomalib_hvq.data.items import (
    MultiClassImageBatch,
    MultiClassImageItem,
    NumpyMultiClassImageBatch,
    NumpyMultiClassImageItem,
)
from anomalib_hvq.data.multiclass_folder import MultiClassFolder
from anomalib_hvq.data.mvtec import MVTec
from anomalib_hvq.data.textures import Textures
from anomalib_hvq.data.visa import Visa

__all__ = [
    "CorruptImageError",
    "DatasetNotFoundError",
    "EmptyCategoryError",
    "MVTec",
    "MissingMaskError",
    "MultiClassDataError",
    "MultiClassDataset",
    "MultiClassFolder",
    "MultiClassImageBatch",
    "MultiClassImageItem",
    "NumpyMultiClassImageBatch",
    "NumpyMultiClassImageItem",
    "OrphanMaskError",
    "SplitError",
    "Textures",
    "UnknownCategoryError",
    "UnsupportedImageError",
    "Visa",
]

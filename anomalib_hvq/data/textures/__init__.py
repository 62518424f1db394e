# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Offline demo data set built from real texture photos shipped with scikit-image."""

from anomalib_hvq.data.textures.datamodule import Textures
from anomalib_hvq.data.textures.generator import (
    CATEGORIES,
    DEFECT_TYPES,
    ensure_textures,
    generate_textures,
    load_sources,
)

__all__ = ["CATEGORIES", "DEFECT_TYPES", "Textures", "ensure_textures", "generate_textures", "load_sources"]

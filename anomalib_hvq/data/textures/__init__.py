"""Offline demo data set built from real texture photos shipped with scikit-image."""

from anomalib_hvq.data.textures.datamodule import Textures
from anomalib_hvq.data.textures.generator import CATEGORIES, DEFECT_TYPES, ensure_textures, generate_textures

__all__ = ["CATEGORIES", "DEFECT_TYPES", "Textures", "ensure_textures", "generate_textures"]

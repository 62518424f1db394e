# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""HVQ-Trans model."""

from .class_router import ClassRouting
from .codebook_recipe import CodebookRecipe
from .faithfulness import Faithfulness
from .lightning_model import HVQTrans
from .torch_model import HVQTransModel

__all__ = ["ClassRouting", "CodebookRecipe", "Faithfulness", "HVQTrans", "HVQTransModel"]

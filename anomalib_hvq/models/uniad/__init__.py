# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""UniAD model (the unified multi-class baseline HVQ-Trans extends)."""

from .lightning_model import UniAD
from .torch_model import UniADModel

__all__ = ["UniAD", "UniADModel"]

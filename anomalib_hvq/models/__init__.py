# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Models of anomalib-hvq."""

from .hvq_trans import ClassRouting, HVQTrans, HVQTransModel
from .uniad import UniAD, UniADModel

__all__ = ["ClassRouting", "HVQTrans", "HVQTransModel", "UniAD", "UniADModel"]

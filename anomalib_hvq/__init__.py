"""anomalib-hvq: HVQ-Trans (NeurIPS 2023) multi-class anomaly detection for anomalib.

Importing the package makes its datamodules resolvable by short name in anomalib's CLI
(``--data MVTec``, ``--data Textures``, ...).
"""

from anomalib_hvq.data import MultiClassFolder, MVTec, Textures, Visa
from anomalib_hvq.metrics import PerCategoryMetrics
from anomalib_hvq.models import ClassRouting, HVQTrans, HVQTransModel

__all__ = [
    "ClassRouting",
    "HVQTrans",
    "HVQTransModel",
    "MVTec",
    "MultiClassFolder",
    "PerCategoryMetrics",
    "Textures",
    "Visa",
]

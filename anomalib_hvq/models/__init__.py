"""Models of anomalib-hvq."""

from .hvq_trans import ClassRouting, HVQTrans, HVQTransModel

__all__ = ["ClassRouting", "HVQTrans", "HVQTransModel"]

"""anomalib-hvq: HVQ-Trans (NeurIPS 2023) multi-class anomaly detection for anomalib."""

from anomalib_hvq.models import ClassRouting, HVQTrans, HVQTransModel

__all__ = ["ClassRouting", "HVQTrans", "HVQTransModel"]

"""HVQ-Trans model."""

from .lightning_model import ClassRouting, HVQTrans
from .torch_model import HVQTransModel

__all__ = ["ClassRouting", "HVQTrans", "HVQTransModel"]

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Class switch: per-class "expert" output heads selected by each sample's class index."""

from __future__ import annotations

import math

import torch
from torch import nn

from anomalib_hvq.models.components.precision import float32_region


def check_class_index(class_index: torch.Tensor, num_classes: int, batch_size: int) -> torch.Tensor:
    """Validate a ``(B,)`` class-index tensor and return it as long.

    Raises:
        ValueError: If its shape is wrong or an index lies outside ``[0, num_classes)``.

    """
    if class_index.shape != (batch_size,):
        msg = f"class_index must have shape ({batch_size},), got {tuple(class_index.shape)}."
        raise ValueError(msg)
    class_index = class_index.long()
    if bool(((class_index < 0) | (class_index >= num_classes)).any()):
        bad = sorted(set(class_index[(class_index < 0) | (class_index >= num_classes)].tolist()))
        msg = (
            f"class_index {bad} is outside the {num_classes} classes this model was built for "
            f"(0..{num_classes - 1}). Use the datamodule the model was trained with, or pass class_index=None "
            "to let the router pick the class."
        )
        raise ValueError(msg)
    return class_index


class ClassSwitchedLinear(nn.Module):
    """K independent ``nn.Linear(in_dim, out_dim)`` heads applied per sample by class, batched.

    Args:
        num_classes: Number of heads K.
        in_dim: Input size.
        out_dim: Output size.

    """

    def __init__(self, num_classes: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(num_classes, out_dim))
        # Same initialisation as K separate nn.Linear layers.
        bound = 1 / math.sqrt(in_dim)
        for head in range(num_classes):
            nn.init.kaiming_uniform_(self.weight[head], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """Map ``x`` ``(B, L, in_dim)`` with each sample's head to ``(B, L, out_dim)``.

        Float32 also under autocast: the output is the reconstruction whose error is the anomaly map.
        The heads are picked by a one-hot product rather than by indexing: the values are the same, but
        the gradient is then a matrix product, whereas the backward of an index accumulates in a
        thread-dependent order on CPUs and made seeded runs differ.
        """
        with float32_region(x.device.type):
            one_hot = nn.functional.one_hot(class_index, self.weight.shape[0]).float()
            weight = torch.einsum("bk,koi->boi", one_hot, self.weight)
            return torch.einsum("bli,boi->blo", x.float(), weight) + (one_hot @ self.bias).unsqueeze(1)

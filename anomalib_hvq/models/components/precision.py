# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Float32 regions inside mixed-precision (autocast) training and inference.

Lightning's ``precision="bf16-mixed"`` runs every step under ``torch.autocast``. The transformer
gains from that; a few computations lose too much in bfloat16 (8 mantissa bits): nearest-code
distances ``|x|^2 - 2x.e + |e|^2`` cancel, EMA codebook statistics accumulate tiny updates, and the
reconstruction error and OT score are the anomaly map itself. Those run inside :func:`float32_region`.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import torch


def float32_region(device_type: str) -> AbstractContextManager[None]:
    """Disable autocast for ``device_type`` (``"cuda"``, ``"cpu"``) if it is on; otherwise do nothing.

    Returning a no-op context when autocast is off keeps eager fp32 runs and ``torch.export`` graphs
    free of autocast markers. Inputs produced under autocast may still be bfloat16: cast them with
    ``.float()`` inside the region.
    """
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The unified training recipe shared by HVQ-Trans and UniAD, at the Lightning level.

The unified-setting hooks (``unified_recipe``), training from cached backbone features (``cached_training``,
``feature_cache``), the optimiser set-up (``optimization``), the backbone pre-processor with its exportable
antialiased resize (``pre_processing``, ``resize``) and loading checkpoints without the network
(``checkpoint``), and the switch groups the models take (``FastTraining``, ``LRSchedule``). Models import
these; these import torch parts, data and metrics, never a model or ``deploy``.
"""

from .fast_training import FastTraining
from .optimization import LRSchedule

__all__ = ["FastTraining", "LRSchedule"]

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Switches that restore the official code's behaviour where this implementation deliberately differs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Faithfulness:
    """Official-code behaviours that are off by default (see the model README, "Deviations").

    Args:
        backbone_train_mode: Keep the frozen backbone in train mode while training, as the official code did
            (batch-statistics BatchNorm with running-statistics momentum 0.01, drop-connect 0.2 scaled by block).
            Changes the features every step, so the feature cache switches itself off.
        backbone_static_padding: Pad the backbone's strided convolutions statically for this input size
            (380 reproduces the official lukemelas EfficientNet-B4; converted official checkpoints set it);
            ``None`` pads dynamically, as timm does.
        ot_all_levels: Sum the OT score over all levels instead of the lowest one (the official code's
            commented-out variant; published: lowest only).
        sequential_ema: Update the codebooks one sample at a time, in batch order, as the official loop did
            (slower; the default updates them once per batch).

    """

    backbone_train_mode: bool = False
    backbone_static_padding: int | None = None
    ot_all_levels: bool = False
    sequential_ema: bool = False

    def __post_init__(self) -> None:
        """Reject a padding size that cannot be an input size."""
        if self.backbone_static_padding is not None and self.backbone_static_padding < 1:
            msg = (
                f"Faithfulness(backbone_static_padding={self.backbone_static_padding}): give the input size the "
                "padding is computed for (380 for the official B4), or None for timm's dynamic padding."
            )
            raise ValueError(msg)

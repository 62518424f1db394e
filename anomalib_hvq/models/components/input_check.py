# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Refuse images the torch models would score silently wrong: NaN/inf pixels, 0-255 data, integer tensors.

A NaN pixel makes the score and map NaN, and a 0-255 image scores as garbage, with no error. The torch
models take images already scaled to ``[0, 1]`` and normalised by the pre-processor, so every value of a
real image lies within about ``1 / std`` (< 5 for ImageNet statistics) of zero. The value check is one
``aminmax`` pass over the batch and one host sync; it is skipped while the model is traced for export (the
exported graph cannot raise, so the project's inferencers check their inputs instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

# Largest |value| a normalised image can hold with any sensible normalisation (std >= 0.05); 0-255 data exceeds it.
MAX_NORMALISED = 20.0
FIX = (
    "The torch model takes float images scaled to [0, 1] and normalised by the model's pre-processor "
    "(`model.pre_processor`); the Lightning model, the Engine and the inferencers do this for you."
)


class InputError(ValueError):
    """Images a model refuses; ``indices`` are the refused images' positions in the batch."""

    def __init__(self, message: str, indices: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.indices = list(indices)


def _tracing() -> bool:
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def check_dtype(images: torch.Tensor) -> None:
    """Raise :class:`InputError` for a batch that is not floating point (free: no look at the values)."""
    if not images.is_floating_point():
        msg = (
            f"Images of dtype {images.dtype} cannot be used (e.g. 0-255 uint8 data). Convert them with "
            f"`images.float() / 255` and normalise them. {FIX}"
        )
        raise InputError(msg)


def check_model_input(images: torch.Tensor) -> None:
    """Raise :class:`InputError` for a non-float batch ``(B, 3, H, W)``, NaN/inf values or 0-255 values."""
    check_dtype(images)
    if _tracing() or images.numel() == 0:
        return
    # One pass (no copy, unlike abs()): NaN propagates through aminmax, and a comparison with NaN is False.
    low, high = torch.aminmax(images.detach())
    if bool((high <= MAX_NORMALISED) & (low >= -MAX_NORMALISED)):
        return
    values = images.detach().flatten(1)
    non_finite = (~torch.isfinite(values)).any(1)
    if bool(non_finite.any()):
        indices = non_finite.nonzero().flatten().tolist()
        msg = (
            f"Image(s) {indices} of the batch hold NaN or infinite values; their score would be NaN. Check how "
            f"they were read or computed. {FIX}"
        )
        raise InputError(msg, indices)
    peak = values.abs().amax(1)
    indices = (peak > MAX_NORMALISED).nonzero().flatten().tolist()
    msg = (
        f"Image(s) {indices} of the batch hold values up to {float(peak.max()):.4g}, more than a normalised image "
        f"can (|value| <= {MAX_NORMALISED:g}): they look like 0-255 data. {FIX}"
    )
    raise InputError(msg, indices)


@contextmanager
def naming_images(image_paths: Sequence[str] | None) -> Iterator[None]:
    """Add the files of the refused images to an :class:`InputError` raised inside (Lightning steps)."""
    try:
        yield
    except InputError as error:
        if not image_paths or not error.indices:
            raise
        files = [str(image_paths[index]) for index in error.indices if index < len(image_paths)]
        raise InputError(f"{error} Files: {files}.", error.indices) from None

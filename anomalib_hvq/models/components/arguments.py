# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Constructor argument checks that name the argument, instead of a deep traceback (or none) later."""

from __future__ import annotations

from collections.abc import Sequence


def check_positive_ints(**values: int) -> None:
    """Raise ``ValueError`` naming the first argument that is not an integer >= 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"{name} must be a positive integer, got {value!r}."
            raise ValueError(msg)


def check_range(name: str, value: float, low: float, high: float, *, low_open: bool, high_open: bool) -> None:
    """Raise ``ValueError`` unless ``low <(=) value <(=) high`` (open ends excluded), naming ``name``."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if isinstance(value, bool) or not isinstance(value, int | float) or not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        msg = f"{name} must lie in {interval}, got {value!r}."
        raise ValueError(msg)


def check_non_negative(**values: float) -> None:
    """Raise ``ValueError`` naming the first argument that is negative (or not a number)."""
    for name, value in values.items():
        check_range(name, value, 0.0, float("inf"), low_open=False, high_open=True)


def check_grid(name: str, size: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``size`` is a pair of positive integers ``(h, w)``."""
    if len(tuple(size)) != 2:
        msg = f"{name} must be a pair (h, w), got {size!r}."
        raise ValueError(msg)
    check_positive_ints(**{f"{name}[{i}]": value for i, value in enumerate(size)})


def check_heads(hidden_dim: int, num_heads: int) -> None:
    """Raise ``ValueError`` unless attention heads split the width evenly."""
    if hidden_dim % num_heads:
        msg = f"hidden_dim={hidden_dim} must be divisible by num_heads={num_heads} (each head gets an equal part)."
        raise ValueError(msg)

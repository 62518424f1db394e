# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Speed-ups of training that leave the trained model as it would be without them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FastTraining:
    """Training speed-ups, all off by default; with ``float32`` storage none changes what is learned.

    Checked when the model builds its :class:`~anomalib_hvq.training.cached_training.CachedTraining`.

    Args:
        feature_cache: Train from backbone features computed once per image at the start of ``fit``:
            ``True``/``"memory"`` (on the training device), ``"disk"`` (memory-mapped file, reused across runs
            while valid) or ``False``. Exact; switched off with a warning when the backbone is in train mode or
            the training data has random augmentations. See :mod:`anomalib_hvq.training.cached_training`.
        feature_cache_dir: Folder of the disk cache (default ``./feature_cache/<datamodule name>``).
        feature_cache_dtype: Cache storage: ``"float32"`` (exact), ``"float16"`` or ``"bfloat16"`` (half the
            memory, features rounded).
        compile_transformer: ``torch.compile`` the transformer layers at the start of ``fit`` (parameter names
            and checkpoints unchanged).

    """

    feature_cache: bool | str = False
    feature_cache_dir: str | None = None
    feature_cache_dtype: str = "float32"
    compile_transformer: bool = False

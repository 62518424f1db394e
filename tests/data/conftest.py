# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Fixtures of the data tests."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Decode images with one intra-op thread, as DataLoader workers do.

    With ``num_workers=0`` the main process converts images; on a small, busy machine two
    threads make these element-wise conversions tens of times slower than one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

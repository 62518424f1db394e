# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

import pytest

from .synthetic import Synthetic, make_synthetic


@pytest.fixture
def synthetic() -> Synthetic:
    return make_synthetic()

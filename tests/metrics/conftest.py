import pytest

from .synthetic import Synthetic, make_synthetic


@pytest.fixture
def synthetic() -> Synthetic:
    return make_synthetic()

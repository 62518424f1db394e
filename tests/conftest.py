# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Shared fixtures: tiny fake data sets in MVTec AD layout."""

import os

# Never wait on the Hugging Face hub in tests (timm fails fast instead of retrying for ~47 s).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys
from pathlib import Path

import pytest
from anomalib.data.datasets.image.mvtecad import CATEGORIES as MVTEC_CATEGORIES

# Tests import the fixtures module as `from fake_data import make_mvtec_tree`, whether or not
# `tests` is a package (pytest only puts this folder on sys.path when it is not).
sys.path.insert(0, str(Path(__file__).parent))
from fake_data import make_mvtec_tree

TINY_CATEGORIES = ("bottle", "carpet", "grid")


@pytest.fixture(scope="session")
def tiny_mvtec_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny MVTec-format tree with 3 categories (bottle, carpet, grid), 64x64 images."""
    return make_mvtec_tree(tmp_path_factory.mktemp("tiny_mvtec") / "MVTecAD", TINY_CATEGORIES)


@pytest.fixture(scope="session")
def fake_mvtec15_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny MVTec-format tree with all 15 MVTec AD category names, 32x32 images."""
    return make_mvtec_tree(tmp_path_factory.mktemp("fake_mvtec15") / "MVTecAD", MVTEC_CATEGORIES, size=32)

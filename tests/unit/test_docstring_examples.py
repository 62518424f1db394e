# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The ``Example:`` blocks of the models' and datamodules' docstrings run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "anomalib_hvq.models.hvq_trans.lightning_model",
    "anomalib_hvq.models.uniad.lightning_model",
    "anomalib_hvq.data.multiclass_folder",
    "anomalib_hvq.data.mvtec",
    "anomalib_hvq.data.visa",
    "anomalib_hvq.data.textures.datamodule",
    "anomalib_hvq.data.items",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    results = doctest.testmod(module, extraglobs=vars(module).copy(), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0, f"{name} has no Example"
    assert results.failed == 0

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Routing is one enum from the Lightning module down to the torch model, and it is saved."""

import logging
from types import SimpleNamespace

import pytest
from tiny_hvq import TINY_HVQ

from anomalib_hvq import ClassRouting, HVQTrans


def test_set_class_routing_reaches_the_torch_model_and_the_saved_hyperparameters() -> None:
    model = HVQTrans(**TINY_HVQ, class_names=["a", "b"])
    model.set_class_routing("codebook_fit")
    assert model.model.routing is ClassRouting.CODEBOOK_FIT
    assert model.hparams["class_routing"] is ClassRouting.CODEBOOK_FIT
    with pytest.raises(ValueError, match="Unknown routing 'nearest'"):
        model.set_class_routing("nearest")


def test_batches_without_a_class_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    model = HVQTrans(**TINY_HVQ, class_names=["a"])
    with caplog.at_level(logging.WARNING):
        assert model._class_index(SimpleNamespace()) is None
        assert model._class_index(SimpleNamespace()) is None
    assert sum("carry no class" in record.getMessage() for record in caplog.records) == 1

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A checkpoint of a model built with downloaded (or local-file) backbone weights loads without the network."""

from pathlib import Path

import lightning
import pytest
import torch
from anomalib.deploy import ExportType
from engine_helpers import TINY_MODEL

from anomalib_hvq import HVQTrans


@pytest.fixture(scope="module")
def b4_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny B4 model's checkpoint whose arguments say: ImageNet weights, and a weight file that is gone."""
    torch.manual_seed(0)
    model = HVQTrans(**{**TINY_MODEL, "backbone": "tf_efficientnet_b4"}, class_names=["a", "b"])
    hyper_parameters = {**model.hparams, "pre_trained": True, "backbone_weights": "/training/machine/b4.pth"}
    path = tmp_path_factory.mktemp("b4") / "model.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": hyper_parameters,
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    return path


def test_checkpoint_loads_offline_with_its_weights_and_arguments(b4_checkpoint: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = HVQTrans.load_from_checkpoint(b4_checkpoint)
    saved = torch.load(b4_checkpoint, weights_only=False)
    torch.testing.assert_close(model.state_dict(), saved["state_dict"], rtol=0, atol=0, equal_nan=True)
    assert model.hparams["pre_trained"] is True
    assert model.hparams["backbone_weights"] == "/training/machine/b4.pth"
    assert model.class_names == ["a", "b"]


def test_checkpoint_without_backbone_weights_fails_loudly(b4_checkpoint: Path, tmp_path: Path) -> None:
    saved = torch.load(b4_checkpoint, weights_only=False)
    saved["state_dict"] = {k: v for k, v in saved["state_dict"].items() if "backbone" not in k}
    torch.save(saved, tmp_path / "partial.ckpt")
    with pytest.raises(RuntimeError, match=r"with this model's arguments, but its tensors \d+ missing"):
        HVQTrans.load_from_checkpoint(tmp_path / "partial.ckpt")


def test_engine_exports_from_checkpoint_offline(b4_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from engine_helpers import tiny_engine, tiny_model

    engine = tiny_engine(tmp_path)
    path = engine.export(tiny_model(), ExportType.TORCH, export_root=tmp_path, ckpt_path=b4_checkpoint)
    assert Path(path).is_file()

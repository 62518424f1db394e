# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Damaged checkpoints, files that are no weights, and checkpoints of another model are refused, saying which."""

import shutil
from pathlib import Path

import lightning
import pytest
import torch
from anomalib.data import ImageBatch
from anomalib.utils.serialization import anomalib_safe_globals
from lightning.pytorch import Trainer
from tiny_hvq import TINY_HVQ
from tiny_uniad import TINY as TINY_UNIAD

from anomalib_hvq import HVQTrans, UniAD
from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor
from anomalib_hvq.models.components.file_load import DamagedFileError

FIXTURE = Path(__file__).parents[2] / "fixtures" / "hvq_tiny_v0_1.ckpt"


def _save(module: torch.nn.Module, path: Path) -> Path:
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    return path


def _zero_middle(path: Path, target: Path, count: int = 1000) -> Path:
    shutil.copyfile(path, target)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(count)
    target.write_bytes(bytes(data))
    return target


def test_a_checkpoint_with_zeroed_bytes_is_refused_as_damaged(tmp_path: Path) -> None:
    HVQTrans.load_from_checkpoint(FIXTURE)  # the intact file loads
    damaged = _zero_middle(FIXTURE, tmp_path / "model.ckpt")
    with pytest.raises(
        DamagedFileError, match=r"model.ckpt is damaged \(CRC mismatch in .*\): re-copy it, or re-train"
    ):
        HVQTrans.load_from_checkpoint(damaged)


def test_the_trainer_refuses_a_damaged_checkpoint_before_its_weights_load(tmp_path: Path) -> None:
    model = HVQTrans(**TINY_HVQ, evaluator=False, visualizer=False)
    damaged = _zero_middle(_save(model, tmp_path / "intact.ckpt"), tmp_path / "model.ckpt")
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    batch = ImageBatch(image=torch.rand(1, 3, 32, 32), gt_label=torch.zeros(1, dtype=torch.long))
    with (
        pytest.raises(DamagedFileError, match="CRC mismatch"),
        anomalib_safe_globals(HVQTrans.checkpoint_safe_globals()),
    ):
        trainer.validate(model, dataloaders=[batch], ckpt_path=damaged)


class Opaque:
    """A Python object: a pickle of it is not a weight file."""


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not a weight file\n" * 20, "torch cannot read it"),
        (bytes(range(256)) * 20, "torch cannot read it"),
        ({"weights": Opaque()}, r"it holds Python objects that are not tensors \(.*Opaque\)"),
    ],
)
def test_a_file_that_is_no_weight_file_says_so_without_unsafe_advice(
    tmp_path: Path, payload: object, reason: str
) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(DamagedFileError, match=rf"weights.pth is not a backbone weight file .*: {reason}") as error:
        MultiScaleFeatureExtractor("tf_efficientnet_lite0", pre_trained=False, backbone_weights=path)
    assert "weights_only" not in str(error.value)
    with pytest.raises(DamagedFileError, match=r"is not a model checkpoint \(.ckpt\)") as error:
        HVQTrans.load_from_checkpoint(path)
    assert "weights_only" not in str(error.value)


def test_a_uniad_checkpoint_loaded_as_hvq_trans_names_the_model_it_holds(tmp_path: Path) -> None:
    path = _save(UniAD(**TINY_UNIAD, evaluator=False, visualizer=False), tmp_path / "uniad.ckpt")
    with pytest.raises(
        RuntimeError, match=r"The checkpoint holds a UniAD model \(backbone='tf_efficientnet_lite0'"
    ) as e:
        HVQTrans.load_from_checkpoint(path)
    assert "this HVQTrans" in str(e.value) and "UniAD.load_from_checkpoint(path)" in str(e.value)
    assert len(str(e.value)) < 2000  # not kilobytes of key names


def test_a_checkpoint_of_other_dimensions_names_them(tmp_path: Path) -> None:
    path = _save(HVQTrans(**TINY_HVQ, evaluator=False, visualizer=False), tmp_path / "hvq.ckpt")
    wider = HVQTrans(**{**TINY_HVQ, "hidden_dim": 32}, evaluator=False, visualizer=False)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    batch = ImageBatch(image=torch.rand(1, 3, 32, 32), gt_label=torch.zeros(1, dtype=torch.long))
    match = r"holds a HVQTrans model \(.*hidden_dim=16.*this HVQTrans \(.*hidden_dim=32"
    with pytest.raises(RuntimeError, match=match), anomalib_safe_globals(HVQTrans.checkpoint_safe_globals()):
        trainer.validate(wider, dataloaders=[batch], ckpt_path=path)

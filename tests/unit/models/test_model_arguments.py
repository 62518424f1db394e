# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Out-of-range model arguments are refused at construction, naming the argument."""

from pathlib import Path

import pytest
from tiny_hvq import TINY_HVQ
from tiny_uniad import TINY as TINY_UNIAD

from anomalib_hvq import HVQTrans, UniAD
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel
from anomalib_hvq.models.uniad.torch_model import UniADModel
from anomalib_hvq.training import FastTraining

HVQ_CASES = [
    ("hidden_dim", 0),
    ("hidden_dim", -16),
    ("ffn_dim", 0),
    ("ffn_dim", -1),
    ("num_codes", 0),
    ("num_codes", -8),
    ("num_layers", 0),
    ("num_heads", 0),
    ("num_classes", 0),
    ("num_classes", -2),
    ("decay", 0.0),
    ("decay", 1.0),
    ("decay", 1.5),
    ("decay", -0.1),
    ("dropout", 1.0),
    ("ot_weight", -1.0),
]
UNIAD_CASES = [
    ("hidden_dim", 0),
    ("ffn_dim", -4),
    ("num_encoder_layers", 0),
    ("num_decoder_layers", -1),
    ("num_heads", 0),
    ("dropout", -0.5),
    ("jitter_prob", 2.0),
    ("jitter_scale", -1.0),
]


@pytest.mark.parametrize(("name", "value"), HVQ_CASES)
def test_hvq_trans_names_the_bad_argument(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must"):
        HVQTransModel(**{**TINY_HVQ, name: value})


@pytest.mark.parametrize(("name", "value"), [("num_classes", 0), ("decay", 1.0), ("hidden_dim", -1)])
def test_hvq_trans_lightning_module_names_the_bad_argument(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must"):
        HVQTrans(**{**TINY_HVQ, name: value})


@pytest.mark.parametrize(("name", "value"), UNIAD_CASES)
def test_uniad_names_the_bad_argument(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must"):
        UniADModel(**{**TINY_UNIAD, name: value})


def test_heads_that_do_not_split_the_width_are_named() -> None:
    with pytest.raises(ValueError, match=r"hidden_dim=16 must be divisible by num_heads=3"):
        HVQTransModel(**{**TINY_HVQ, "num_heads": 3})
    with pytest.raises(ValueError, match=r"feature_size\[0\] must be a positive integer"):
        UniADModel(**{**TINY_UNIAD, "feature_size": (0, 4)})


def test_unsupported_backbone_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match=r"Backbone 'resnet18' is not supported.*tf_efficientnet_b4 \(official\)"):
        HVQTrans(**{**TINY_HVQ, "backbone": "resnet18"})
    with pytest.raises(ValueError, match=r"Backbone 'resnet18' is not supported"):
        UniAD(**{**TINY_UNIAD, "backbone": "resnet18"})


def test_feature_cache_dir_that_is_a_file_is_refused_at_construction(tmp_path: Path) -> None:
    file = tmp_path / "cache"
    file.write_text("not a folder")
    fast = FastTraining(feature_cache="disk", feature_cache_dir=str(file))
    with pytest.raises(ValueError, match=r"feature_cache_dir=.*cache' is a file, not a folder"):
        HVQTrans(**TINY_HVQ, fast_training=fast)

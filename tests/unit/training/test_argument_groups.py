# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Grouped constructor switches: flat arguments of older checkpoints are regrouped, saved groups win."""

import pytest

from anomalib_hvq import HVQTrans, UniAD
from anomalib_hvq.models.hvq_trans.faithfulness import Faithfulness
from anomalib_hvq.training.checkpoint import regroup_flat_arguments
from anomalib_hvq.training.fast_training import FastTraining


def test_flat_switches_move_into_their_groups_and_other_arguments_stay() -> None:
    saved = {"hidden_dim": 16, "ot_all_levels": True, "backbone_static_padding": 380, "feature_cache": "disk"}
    upgraded = HVQTrans.upgrade_hyperparameters(saved)
    assert upgraded == {
        "hidden_dim": 16,
        "faithfulness": Faithfulness(ot_all_levels=True, backbone_static_padding=380),
        "fast_training": FastTraining(feature_cache="disk"),
    }
    assert saved["ot_all_levels"] is True, "the caller's dictionary is not changed"


def test_a_saved_group_wins_over_flat_leftovers() -> None:
    saved = {"fast_training": FastTraining(compile_transformer=True), "feature_cache": True}
    assert regroup_flat_arguments(saved, {"fast_training": FastTraining}) == {
        "fast_training": FastTraining(compile_transformer=True)
    }


def test_uniad_has_no_faithfulness_group() -> None:
    assert UniAD.upgrade_hyperparameters({"ot_all_levels": True, "feature_cache_dtype": "float16"}) == {
        "ot_all_levels": True,
        "fast_training": FastTraining(feature_cache_dtype="float16"),
    }


def test_bad_switch_values_fail_when_the_model_is_built() -> None:
    with pytest.raises(ValueError, match="feature_cache must be"):
        UniAD(pre_trained=False, backbone="tf_efficientnet_lite0", fast_training=FastTraining(feature_cache="gpu"))
    with pytest.raises(ValueError, match="backbone_static_padding"):
        Faithfulness(backbone_static_padding=0)

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A checkpoint written by anomalib-hvq 0.1 (before the layering step) still loads and predicts the same.

The fixture was saved by the 0.1 code at commit 63bca55 (tiny dims, two classes, random weights, router
statistics set), together with that code's predictions for two images: the reference here is the old code's
output, not the code under test.
"""

from pathlib import Path

import torch

from anomalib_hvq import ClassRouting, HVQTrans
from anomalib_hvq.models.hvq_trans.faithfulness import Faithfulness

FIXTURES = Path(__file__).parents[3] / "fixtures"


def test_a_checkpoint_from_before_the_move_loads_and_predicts_the_same() -> None:
    model = HVQTrans.load_from_checkpoint(FIXTURES / "hvq_tiny_v0_1.ckpt").eval()
    expected = torch.load(FIXTURES / "hvq_tiny_v0_1_expected.pt", weights_only=True)
    with torch.no_grad():
        predictions, _ = model.model.predict(expected["images"], expected["class_index"])
    torch.testing.assert_close(predictions.anomaly_map, expected["anomaly_map"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(predictions.pred_score, expected["pred_score"], rtol=1e-5, atol=1e-5)
    assert model.class_names == ["a", "b"]
    # 0.1 saved the switch flat; it now lives in the `faithfulness` group.
    assert model.model.faithfulness.ot_all_levels, "the saved ot_all_levels=True must survive the load"
    assert model.hparams["faithfulness"] == Faithfulness(ot_all_levels=True)
    assert model.class_routing is ClassRouting.CENTROID


def test_the_legacy_decoder_keys_are_renamed_not_dropped() -> None:
    state = torch.load(FIXTURES / "hvq_tiny_v0_1.ckpt", weights_only=False)["state_dict"]
    assert "model.decoder_norm.weight" in state and "model.decoder.0.norm1.weight" in state
    model = HVQTrans.load_from_checkpoint(FIXTURES / "hvq_tiny_v0_1.ckpt")
    torch.testing.assert_close(model.model.decoder.norm.weight, state["model.decoder_norm.weight"])
    torch.testing.assert_close(model.model.decoder.layers[0].norm1.weight, state["model.decoder.0.norm1.weight"])

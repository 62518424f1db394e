# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""HVQ-Trans torch model: shapes, wiring, class switch, losses, export."""

import pytest
import torch
from anomalib.data import InferenceBatch
from dynamic_batch_export import assert_exports_with_dynamic_batch
from tiny_hvq import TINY_HVQ

from anomalib_hvq.models.components.input_check import MAX_NORMALISED, InputError
from anomalib_hvq.models.hvq_trans.faithfulness import Faithfulness
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel

TINY = {**TINY_HVQ, "feature_size": (4, 4)}


@pytest.fixture
def model() -> HVQTransModel:
    torch.manual_seed(0)
    return HVQTransModel(num_classes=2, **TINY)


def test_shapes_through_every_stage(model: HVQTransModel) -> None:
    model.eval()
    images = torch.randn(3, 3, 64, 64)
    features = model.feature_extractor(images)
    assert features.shape == (3, 16 + 24 + 40 + 112, 4, 4)
    tokens = model.input_proj(features).flatten(2).transpose(1, 2)
    encoded = model.encoder(tokens, model.pos_embed())
    assert [e.shape for e in encoded] == [(3, 16, 16)] * 3
    codes = model.quantizer(encoded, torch.tensor([0, 1, 0]))
    assert [m.shape for m in codes.memories] == [(3, 16, 32)] * 2
    assert [c.shape for c in codes.codes] == [(3, 16)] * 3
    reconstruction = model._decode(codes, model.pos_embed(), torch.tensor([0, 1, 0]), features.shape)
    assert reconstruction.shape == features.shape
    output = model(images, torch.tensor([0, 1, 0]))
    assert isinstance(output, InferenceBatch)
    assert output.pred_score.shape == (3,)
    assert output.anomaly_map.shape == (3, 1, 64, 64)


def test_lower_levels_quantize_encoder_outputs_concatenated_with_the_top_code(model: HVQTransModel) -> None:
    model.eval()
    encoded = [torch.randn(1, 16, 16) for _ in range(3)]
    codes = model.quantizer(encoded, torch.tensor([1]))
    top = model.quantizer.top(encoded[-1], torch.tensor([1])).quantized
    # The lowest level sees the input tokens E_0 next to the top code.
    torch.testing.assert_close(codes.inputs[-1], torch.cat([encoded[0], top], dim=-1))
    first = model.quantizer.lower[0](torch.cat([encoded[1], top], dim=-1), torch.tensor([1])).quantized
    torch.testing.assert_close(codes.memories[0], first)


def test_training_returns_loss_and_gradient_reaches_the_encoder(model: HVQTransModel) -> None:
    model.train()
    loss = model(torch.randn(2, 3, 64, 64), torch.tensor([0, 1]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    first_layer = model.encoder.layers[0].self_attn.in_proj_weight
    assert first_layer.grad is not None and first_layer.grad.abs().sum() > 0
    assert model.input_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.feature_extractor.parameters())


def test_loss_is_reconstruction_plus_quarter_commitment(model: HVQTransModel) -> None:
    model.train()
    torch.manual_seed(1)
    terms = model.training_output(torch.randn(2, 3, 64, 64), torch.tensor([0, 1])).terms
    torch.testing.assert_close(terms.loss, terms.reconstruction + 0.25 * terms.commitment)
    assert terms.commitment > 0


def test_class_switch_selects_codebooks_and_heads(model: HVQTransModel) -> None:
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    as_classes = model(images, torch.tensor([0, 1]))
    swapped = model(images, torch.tensor([1, 0]))
    assert not torch.allclose(as_classes.anomaly_map, swapped.anomaly_map)
    # Each image's result depends only on its own class: scoring them one by one agrees.
    first_alone = model(images[:1], torch.tensor([1]))
    torch.testing.assert_close(first_alone.anomaly_map[0], swapped.anomaly_map[0], rtol=1e-4, atol=1e-4)


def test_training_updates_only_the_codebooks_of_present_classes(model: HVQTransModel) -> None:
    model.train()
    before = model.quantizer.top.embed.clone()
    model(torch.randn(2, 3, 64, 64), torch.tensor([1, 1]))
    after = model.quantizer.top.embed
    assert torch.equal(before[0], after[0])
    assert not torch.equal(before[1], after[1])


def test_reconstruct_gives_the_training_reconstruction_and_changes_no_state(model: HVQTransModel) -> None:
    model.eval()
    features, class_index = model.feature_extractor(torch.randn(2, 3, 64, 64)), torch.tensor([1, 0])
    state = {name: value.clone() for name, value in model.state_dict().items()}
    reconstruction = model.reconstruct(features, class_index)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name  # no EMA step, no router update: usable as a validation probe
    terms = model.training_output(None, class_index, features=features).terms
    torch.testing.assert_close((reconstruction - features).pow(2).mean(), terms.reconstruction)
    assert not torch.allclose(model.reconstruct(features, class_index.flip(0)), reconstruction)


def test_router_is_fed_in_training_and_routes_in_eval(model: HVQTransModel) -> None:
    model.train()
    model(torch.randn(2, 3, 64, 64), torch.tensor([0, 1]))
    assert model.router.count.tolist() == [1.0, 1.0]
    model.eval()
    _, routed = model.predict(torch.randn(2, 3, 64, 64))
    assert routed.shape == (2,) and set(routed.tolist()) <= {0, 1}


def test_bad_inputs_raise_clear_errors(model: HVQTransModel) -> None:
    model.eval()
    with pytest.raises(ValueError, match="RGB"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="outside the 2 classes"):
        model(torch.randn(1, 3, 64, 64), torch.tensor([2]))


def test_no_nan_in_scores_for_the_largest_accepted_inputs_and_huge_ones_are_refused(model: HVQTransModel) -> None:
    model.eval()
    output = model(torch.full((1, 3, 64, 64), MAX_NORMALISED))
    assert torch.isfinite(output.anomaly_map).all() and torch.isfinite(output.pred_score).all()
    with pytest.raises(InputError, match="look like 0-255 data"):
        model(torch.full((1, 3, 64, 64), 1e4))


def test_torch_export_with_image_only_and_dynamic_batch(model: HVQTransModel) -> None:
    model.router.update(torch.randn(2, 192), torch.tensor([0, 1]))
    assert_exports_with_dynamic_batch(model)


def test_official_dimensions_give_the_official_parameter_counts() -> None:
    model = HVQTransModel(num_classes=15, backbone="tf_efficientnet_b4", pre_trained=False)
    trainable = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "router" not in n)
    codebooks = sum(b.numel() for n, b in model.named_buffers() if n.endswith(".embed"))
    assert model.feature_extractor.num_channels == 272
    assert trainable == 17_944_304  # official 18,014,192 minus the unused input_proj Linear(272, 256)
    assert codebooks == 17_694_720


def test_routing_methods_pick_the_class_the_model_was_trained_on() -> None:
    """Both label-free routers send images of a class seen only as class 1 to class 1."""
    torch.manual_seed(0)
    model = HVQTransModel(num_classes=3, **TINY)
    images = torch.randn(4, 3, 64, 64)
    model.train()
    for _ in range(3):
        model(images, torch.tensor([1, 1, 1, 1]))
    model.eval()
    for routing in ("centroid", "codebook_fit"):
        model.routing = routing
        _, routed = model.predict(images)
        assert routed.tolist() == [1, 1, 1, 1], routing
    with pytest.raises(ValueError, match="Unknown routing"):
        HVQTransModel(num_classes=1, routing="classifier", **TINY)


def test_ot_over_all_levels_adds_to_the_lowest_level_score() -> None:
    torch.manual_seed(0)
    model = HVQTransModel(num_classes=1, **TINY).eval()
    images = torch.randn(2, 3, 64, 64)
    lowest = model(images).anomaly_map
    model.faithfulness = Faithfulness(ot_all_levels=True)
    assert (model(images).anomaly_map > lowest).all()


def test_sequential_ema_switch_matches_the_per_sample_loop() -> None:
    torch.manual_seed(0)
    tiny = {**TINY, "dropout": 0.0}
    grouped = HVQTransModel(num_classes=2, **tiny).train()
    sequential = HVQTransModel(num_classes=2, faithfulness=Faithfulness(sequential_ema=True), **tiny).train()
    sequential.load_state_dict(grouped.state_dict())
    images, classes = torch.randn(3, 3, 64, 64), torch.tensor([0, 1, 0])
    sequential.training_output(images, classes)
    # Reference: the official order, i.e. the whole model run on one sample at a time.
    for image, cls in zip(images, classes, strict=True):
        grouped.training_output(image.unsqueeze(0), cls.view(1))
    for ours, reference in zip(sequential.quantizer.levels, grouped.quantizer.levels, strict=True):
        torch.testing.assert_close(ours.embed, reference.embed)

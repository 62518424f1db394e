# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Score calibration: per-class Mahalanobis residual norm (Ledoit-Wolf covariance), OT weighted to its spread."""

import pytest
import torch
from sklearn.covariance import ledoit_wolf as sklearn_ledoit_wolf
from tiny_hvq import TINY_HVQ

from anomalib_hvq.models.components.input_check import InputError
from anomalib_hvq.models.hvq_trans import HVQTransModel
from anomalib_hvq.models.hvq_trans.anomaly_map import AnomalyMapGenerator
from anomalib_hvq.models.hvq_trans.score_calibration import ScoreCalibration, ledoit_wolf


def calibrated_generator(num_classes: int = 2, channels: int = 3) -> AnomalyMapGenerator:
    generator = AnomalyMapGenerator(ot_weight=80.0, pool_size=1)
    generator.calibration = ScoreCalibration(num_classes, channels, ot_weight=80.0)
    return generator


def test_unfitted_calibration_is_the_papers_score() -> None:
    torch.manual_seed(0)
    reconstruction, features, ot = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.rand(2, 16)
    paper = AnomalyMapGenerator(ot_weight=80.0, pool_size=1)(reconstruction, features, ot, (8, 8))
    calibrated = calibrated_generator()(reconstruction, features, ot, (8, 8), torch.tensor([0, 1]))
    torch.testing.assert_close(calibrated, paper)


def test_fit_whitens_each_class_and_balances_the_terms() -> None:
    torch.manual_seed(0)
    # Class 0's channels have very different offsets and spreads; class 1 another set.
    offsets = torch.tensor([[5.0, -2.0, 0.0], [0.0, 1.0, 3.0]])
    spreads = torch.tensor([[100.0, 1.0, 0.1], [2.0, 20.0, 0.5]])
    class_index = torch.tensor([0, 0, 0, 1, 1, 1])
    noise = torch.randn(6, 3, 4, 4)
    residual = offsets[class_index][:, :, None, None] + spreads[class_index][:, :, None, None] * noise
    ot = 0.01 * torch.rand(6, 1, 4, 4)
    generator = calibrated_generator()
    generator.calibration.fit(residual, ot, class_index)

    calibration = generator.calibration
    for k in (0, 1):
        tokens = residual[class_index == k].permute(0, 2, 3, 1).flatten(0, 2).double()  # (tokens of class k, C)
        torch.testing.assert_close(calibration.residual_mean[k], tokens.mean(0).float())
        # Ledoit-Wolf (scikit-learn's, independent of ours) on the standardised tokens, scaled back.
        scale = tokens.std(0)
        correlation, _ = sklearn_ledoit_wolf((tokens / scale).numpy())
        covariance = scale[:, None] * torch.from_numpy(correlation) * scale[None, :]
        whitener = calibration.residual_whitener[k].double()
        precision = torch.linalg.inv(covariance)
        torch.testing.assert_close(whitener @ whitener.T, precision, rtol=1e-3, atol=1e-6)
    error, weighted_ot = generator.terms(residual, torch.zeros_like(residual), ot.flatten(1), class_index)
    # The whitened error no longer follows the widest channel: per class it is about sqrt(C) on average.
    assert error.mean().item() == pytest.approx(3**0.5, rel=0.2)
    assert weighted_ot.std().item() == pytest.approx(error.std().item(), rel=0.5)  # same scale; exact: next test
    assert bool(calibration.fitted)


def test_ot_weight_matches_the_error_spread_on_unseen_normal_images() -> None:
    torch.manual_seed(0)
    channels, classes = 24, 2
    mixing = torch.randn(classes, channels, channels) / channels**0.5 + torch.eye(channels)

    def normal_residuals(images_per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        class_index = torch.arange(classes).repeat_interleave(images_per_class)
        noise = torch.randn(len(class_index), 4, 4, channels)  # correlated per class through `mixing`
        return torch.einsum("nhwc,ncd->ndhw", noise, mixing[class_index]), class_index

    residual, class_index = normal_residuals(5)  # 80 tokens per class for a 24 x 24 covariance, as in the demo
    ot = torch.rand(len(class_index), 1, 4, 4)
    calibration = ScoreCalibration(classes, channels, ot_weight=80.0)
    calibration.fit(residual, ot, class_index)

    unseen, unseen_class = normal_residuals(200)
    unseen_spread = calibration.error(unseen, unseen_class).std().item()
    fitted_spread = calibration.error(residual, class_index).std().item()
    assert fitted_spread < 0.8 * unseen_spread  # the images the covariance was fitted on look too normal
    assert (calibration.ot_weight * ot.std()).item() == pytest.approx(unseen_spread, rel=0.15)


def test_ledoit_wolf_matches_scikit_learn() -> None:
    torch.manual_seed(0)
    samples = torch.randn(50, 8, dtype=torch.float64) @ torch.randn(8, 8, dtype=torch.float64)
    samples -= samples.mean(0)
    reference, reference_shrinkage = sklearn_ledoit_wolf(samples.numpy(), assume_centered=True)
    covariance, shrinkage = ledoit_wolf(samples)
    torch.testing.assert_close(covariance, torch.from_numpy(reference))
    assert shrinkage == pytest.approx(reference_shrinkage)
    assert 0 < shrinkage < 1


def test_a_residual_along_the_normal_correlation_counts_less_than_one_across_it() -> None:
    # Normal residuals move channels 0 and 1 together; a per-channel scale cannot tell the two cases apart.
    torch.manual_seed(0)
    shared, own = torch.randn(8, 1, 6, 6), 0.05 * torch.randn(8, 2, 6, 6)
    residual = torch.cat([shared, shared], dim=1) + own
    calibration = ScoreCalibration(num_classes=1, channels=2, ot_weight=80.0)
    calibration.fit(residual, torch.rand(8, 1, 6, 6), torch.zeros(8, dtype=torch.long))
    mean = calibration.residual_mean[0].view(1, 2, 1, 1)
    along = (torch.tensor([1.0, 1.0]).view(1, 2, 1, 1) + mean).expand(1, 2, 6, 6)
    across = (torch.tensor([1.0, -1.0]).view(1, 2, 1, 1) + mean).expand(1, 2, 6, 6)
    first = torch.zeros(1, dtype=torch.long)
    # Averaged over the grid: the position offsets sum to zero.
    assert calibration.error(across, first).mean().item() > 5 * calibration.error(along, first).mean().item()


def test_position_offsets_leave_normal_images_no_position_bias() -> None:
    # As with zero padding: border tokens of normal images have a 3x larger residual and a lower OT score.
    torch.manual_seed(0)
    border = torch.ones(6, 6, dtype=torch.bool)
    border[1:-1, 1:-1] = False

    def normal_terms(images: int) -> tuple[torch.Tensor, torch.Tensor]:
        residual = torch.randn(images, 3, 6, 6) * (1 + 2 * border.float())
        ot = 0.5 + 0.01 * torch.randn(images, 1, 6, 6) - 0.05 * border.float()
        return residual, ot

    class_index = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    calibration = ScoreCalibration(num_classes=2, channels=3, ot_weight=80.0, grid=(6, 6))
    calibration.fit(*normal_terms(8), class_index)

    unseen_residual, unseen_ot = normal_terms(400)
    unseen_class = torch.arange(400) % 2
    for name, term in (
        ("error", calibration.error(unseen_residual, unseen_class)),
        ("OT", calibration.weighted_ot(unseen_ot)),
    ):
        per_position = term.mean(0)[0]
        gap = (per_position[border].mean() - per_position[~border].mean()).abs().item()
        assert gap < 0.25 * term.std().item(), name  # without the offsets: 1.4 (error) and 1.9 (OT) spreads
    assert calibration.error_offset[border].mean() > calibration.error_offset[~border].mean()
    assert calibration.ot_offset.sum().abs().item() < 1e-4  # offsets shape the map, they do not shift a level


def test_class_without_validation_images_gets_the_pooled_statistics() -> None:
    torch.manual_seed(0)
    residual, ot = 3.0 + 2.0 * torch.randn(4, 3, 4, 4), torch.rand(4, 1, 4, 4)
    calibration = ScoreCalibration(num_classes=2, channels=3, ot_weight=80.0)
    calibration.fit(residual, ot, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(calibration.residual_mean[1], calibration.residual_mean[0])
    torch.testing.assert_close(calibration.residual_whitener[1], calibration.residual_whitener[0])
    assert not torch.equal(calibration.residual_whitener[0], torch.eye(3))


def test_a_class_with_one_validation_image_is_scored_by_its_own_fit() -> None:
    # No other image of class 0 to score it out of fold: its own statistics stand in, the weight stays finite.
    torch.manual_seed(0)
    residual, ot = torch.randn(4, 3, 4, 4), torch.rand(4, 1, 4, 4)
    calibration = ScoreCalibration(num_classes=2, channels=3, ot_weight=80.0, grid=(4, 4))
    calibration.fit(residual, ot, torch.tensor([0, 1, 1, 1]))
    assert torch.isfinite(calibration.ot_weight) and calibration.ot_weight.item() != 80.0
    own = residual[:1].flatten(2).transpose(1, 2).flatten(0, 1)
    torch.testing.assert_close(calibration.residual_mean[0], own.mean(0))


def test_constant_residual_gets_a_floor_not_an_infinite_score() -> None:
    # Every token the same residual (the Ledoit-Wolf covariance is all zeros).
    residual = torch.full((2, 3, 4, 4), 0.5)
    calibration = ScoreCalibration(num_classes=1, channels=3, ot_weight=80.0)
    calibration.fit(residual, torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    shifted = residual + 0.1
    error = calibration.error(shifted, torch.zeros(2, dtype=torch.long))
    assert torch.isfinite(error).all()
    assert (error > 0).all()


def test_a_per_channel_calibration_of_an_older_checkpoint_loads_as_it_scored() -> None:
    # Older checkpoints saved per-class, per-channel scales; the map they gave was ||(r - mean) / scale||.
    mean, scale = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.5, 2.0, 4.0]])
    calibration = ScoreCalibration(num_classes=1, channels=3, ot_weight=80.0)
    old = {"residual_mean": mean, "residual_scale": scale, "ot_weight": torch.tensor(30.0), "fitted": torch.tensor(1)}
    calibration.load_state_dict(old)
    residual, first = torch.randn(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    expected = ((residual - mean.view(1, 3, 1, 1)) / scale.view(1, 3, 1, 1)).pow(2).sum(1, keepdim=True).sqrt()
    torch.testing.assert_close(calibration.error(residual, first), expected)


def test_calibrated_map_needs_the_class() -> None:
    with pytest.raises(ValueError, match="class"):
        calibrated_generator()(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.zeros(1, 4), (4, 4))


def tiny_model(**kwargs: object) -> HVQTransModel:
    torch.manual_seed(0)
    return HVQTransModel(num_classes=2, feature_size=(4, 4), **TINY_HVQ, **kwargs).eval()


def test_model_fits_on_normal_images_only_and_saves_the_calibration() -> None:
    model = tiny_model(calibrate_score=True)
    torch.manual_seed(1)
    normal, classes = torch.randn(4, 3, 64, 64), torch.tensor([0, 0, 1, 1])
    anomalous = 50.0 * torch.randn(2, 3, 64, 64)
    model.fit_score_calibration([(normal, classes, None)])
    fitted = {key: value.clone() for key, value in model.anomaly_map.calibration.state_dict().items()}
    model.use_score_calibration(True)  # a fresh, unfitted calibration
    mixed_labels = torch.tensor([0, 1, 0, 0, 1, 0])
    mixed = torch.cat([normal[:1], anomalous[:1], normal[1:3], anomalous[1:], normal[3:]])
    model.fit_score_calibration([(mixed, torch.tensor([0, 0, 0, 1, 1, 1]), mixed_labels)])
    for key, value in model.anomaly_map.calibration.state_dict().items():
        torch.testing.assert_close(value, fitted[key], msg=key)
    assert float(model.anomaly_map.calibration.ot_weight) != 80.0

    restored = tiny_model(calibrate_score=True)
    restored.load_state_dict(model.state_dict())
    images = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(restored.predict(images)[0].pred_score, model.predict(images)[0].pred_score)
    assert restored.predict(images)[0].pred_score.ne(tiny_model().predict(images)[0].pred_score).all()


def test_model_without_calibration_refuses_to_fit() -> None:
    with pytest.raises(RuntimeError, match="calibrate_score"):
        tiny_model().fit_score_calibration([])


def test_a_nan_validation_image_is_refused_not_turned_into_nan_scores() -> None:
    model = tiny_model(calibrate_score=True)
    images = torch.randn(2, 3, 64, 64)
    images[1, 0, 5, 5] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model.fit_score_calibration([(images, torch.tensor([0, 1]), None)])
    assert not bool(model.anomaly_map.calibration.fitted)

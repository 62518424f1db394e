# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Score calibration: both anomaly-score terms brought to the same scale on normal validation images.

The paper's map is ``||rec - feat||_2 + 80 * OT``. With other backbones or short schedules the two terms live on
very different scales (EfficientNet-Lite0 after 30 epochs: the error is about 150 times the OT score on normal
tokens), so the sum is the error term alone. Calibration reads, label-free, off normal validation images:

- per class, the mean and covariance of the residual ``rec - feat`` over the tokens; the error term becomes the
  Mahalanobis norm of the residual, ``sqrt((r - mean)^T cov^-1 (r - mean))``: no channel dominates by its scale,
  residual directions that normal images share (correlated channels, e.g. a texture the decoder always smooths)
  count little, and a class's typical residual is not an anomaly. The channels' correlation matrix is shrunk
  towards the identity by the Ledoit-Wolf estimate (a few validation images give fewer tokens than a
  well-conditioned ``C x C`` covariance needs; the shrinkage is computed from the data, no constant is tuned);
- per token position, each term's mean offset over the normal images (pooled over classes, each class's own
  level removed): the backbone's zero padding and the decoder make both terms position-dependent (on the demo
  the error is about one spread higher on the border than in the middle), and the image score, a maximum over
  positions, would otherwise pick the border of normal images;
- the OT weight that gives both terms the same standard deviation on those tokens, the error's read out of fold
  (each image scored by the statistics of the class's other images), as it spreads on normal images it was not
  fitted to.

Defaults (before fitting) are the identity and the constructor's OT weight, i.e. the paper's score.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

# A channel whose validation residual barely varies would make any deviation infinitely anomalous: its scale is
# at least this fraction of the mean channel scale, and every eigenvalue of the channels' correlation matrix at
# least VARIANCE_FLOOR.
SCALE_FLOOR = 1e-3
VARIANCE_FLOOR = 1e-6
# The error term's spread for the OT weight is read out of fold (see ScoreCalibration._held_out_error).
CROSS_FIT_FOLDS = 5


class ScoreCalibration(nn.Module):
    """Per-class Mahalanobis residual norm and a balanced OT weight, fitted on normal validation tokens.

    Args:
        num_classes: Number of classes K.
        channels: Feature channels C.
        ot_weight: OT weight until :meth:`fit` sets the balanced one.
        grid: Token grid ``(h, w)`` of the terms (the offsets' shape).

    Attributes:
        residual_mean: Mean residual per class ``(K, C)``.
        residual_whitener: Per class the ``(C, C)`` matrix ``W`` with ``W W^T = cov^-1``, so the error of a residual
            row vector ``r`` is ``||(r - mean) W||``; identity before fitting.
        error_offset, ot_offset: Each term's mean offset per token position ``(h, w)``; zero before fitting.

    """

    def __init__(self, num_classes: int, channels: int, ot_weight: float, grid: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        self.register_buffer("residual_mean", torch.zeros(num_classes, channels))
        self.register_buffer("error_offset", torch.zeros(grid))
        self.register_buffer("ot_offset", torch.zeros(grid))
        self.register_buffer("residual_whitener", torch.eye(channels).repeat(num_classes, 1, 1))
        self.register_buffer("ot_weight", torch.tensor(float(ot_weight)))
        self.register_buffer("fitted", torch.tensor(False))

    def error(self, residual: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """Mahalanobis norm less its position offset ``(B, 1, h, w)`` of residuals ``(B, C, h, w)``, class ``(B,)``."""
        batch, _, height, width = residual.shape
        tokens = residual.float().flatten(2).transpose(1, 2)  # (B, h*w, C)
        norms = _norm(tokens, self.residual_mean[class_index].unsqueeze(1), self.residual_whitener[class_index])
        return norms.view(batch, 1, height, width) - self.error_offset

    def weighted_ot(self, ot: torch.Tensor) -> torch.Tensor:
        """OT term ``(B, 1, h, w)``: the OT score ``(B, 1, h, w)`` less its position offset, times the weight."""
        return self.ot_weight * (ot.float() - self.ot_offset)

    @torch.no_grad()
    def fit(self, residual: torch.Tensor, ot: torch.Tensor, class_index: torch.Tensor) -> None:
        """Fit on the terms of normal validation images.

        Args:
            residual: ``rec - feat`` of each image, ``(N, C, h, w)``.
            ot: OT score per token, ``(N, 1, h, w)``.
            class_index: Class of each image ``(N,)`` (a class without images gets the pooled statistics).

        """
        residual, ot = residual.float(), ot.float()
        grid = residual.shape[-2:]
        tokens = residual.flatten(2).transpose(1, 2)  # (N, h*w, C)
        pooled_mean, pooled_whitener = _mean_and_whitener(tokens.flatten(0, 1))
        mean = pooled_mean.expand_as(self.residual_mean).clone()
        whitener = pooled_whitener.expand_as(self.residual_whitener).clone()
        for k in class_index.unique().tolist():  # at most K classes, once per validation epoch
            mean[k], whitener[k] = _mean_and_whitener(tokens[class_index == k].flatten(0, 1))
        self.residual_mean.copy_(mean)
        self.residual_whitener.copy_(whitener)
        error, ot = self._held_out_error(tokens, class_index), ot.flatten(1)  # (N, h*w) each
        self.error_offset = _position_offset(error, class_index).view(grid)
        self.ot_offset = _position_offset(ot, class_index).view(grid)
        error, ot_spread = error - self.error_offset.flatten(), (ot - self.ot_offset.flatten()).std()
        if bool(ot_spread > 0) and bool(torch.isfinite(error).all()):
            self.ot_weight.fill_(float(error.std() / ot_spread))
        else:
            logger.warning("Score calibration: the OT score does not vary on the validation images; weight kept.")
        self.fitted.fill_(True)
        logger.info(
            "Score calibration on %d normal validation image(s): OT weight %.4g (equal spreads, error out of fold).",
            len(class_index),
            float(self.ot_weight),
        )

    def _held_out_error(self, tokens: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """Error of each validation token ``(N, h*w)`` under a calibration fitted without its image.

        A covariance fitted on a few images fits their tokens too well: their own Mahalanobis norms spread less
        than those of unseen normal images, which would under-weight the OT term. So the spread is read
        out of fold: per class, the images are split into up to ``CROSS_FIT_FOLDS`` folds and each fold is
        scored by the mean and whitener of the others (a class with one image keeps its own fit).
        """
        error = tokens.new_empty(tokens.shape[:2])
        for k in class_index.unique().tolist():
            members = torch.nonzero(class_index == k).flatten()
            if len(members) < 2:
                error[members] = _norm(tokens[members], self.residual_mean[k], self.residual_whitener[k])
                continue
            fold = torch.arange(len(members), device=members.device) % min(CROSS_FIT_FOLDS, len(members))
            for held_out in range(int(fold.max()) + 1):
                fitted, scored = members[fold != held_out], members[fold == held_out]
                mean, whitener = _mean_and_whitener(tokens[fitted].flatten(0, 1))
                error[scored] = _norm(tokens[scored], mean, whitener)
        return error

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Read older calibrations: per-channel scales (``residual_scale``) as diagonal, no position offsets as zero."""
        for offset in ("error_offset", "ot_offset"):  # calibrations from before the position offsets had none
            state_dict.setdefault(prefix + offset, torch.zeros_like(getattr(self, offset)))
        scale = state_dict.pop(prefix + "residual_scale", None)
        if scale is not None and prefix + "residual_whitener" not in state_dict:
            state_dict[prefix + "residual_whitener"] = torch.diag_embed(1 / scale)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def ledoit_wolf(centred: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Ledoit-Wolf shrunk covariance ``(C, C)`` of centred samples ``(M, C)`` and its shrinkage in ``[0, 1]``.

    Ledoit and Wolf (2004), "A well-conditioned estimator for large-dimensional covariance matrices": the
    sample covariance ``S`` blended with ``mu * I`` (``mu`` its mean eigenvalue) by the weight that minimises
    the expected squared error, estimated from the samples.
    """
    count, channels = centred.shape
    sample = centred.T @ centred / count
    target = sample.trace() / channels * torch.eye(channels, dtype=sample.dtype, device=sample.device)
    # Dispersion of S around the target mu * I, and the estimated variance of S's entries (how noisy S is).
    dispersion = (sample - target).pow(2).sum()
    squares = centred.pow(2)
    noise = ((squares.T @ squares).sum() / count - sample.pow(2).sum()) / count
    shrinkage = float((noise.clamp(max=dispersion) / dispersion).clamp_min(0)) if dispersion > 0 else 1.0
    return (1 - shrinkage) * sample + shrinkage * target, shrinkage


def _norm(tokens: torch.Tensor, mean: torch.Tensor, whitener: torch.Tensor) -> torch.Tensor:
    """Norms ``||(t - mean) W||`` ``(..., L)`` of tokens ``(..., L, C)``; ``mean`` and ``W`` broadcast (batched)."""
    return ((tokens - mean) @ whitener).pow(2).sum(-1).sqrt()


def _position_offset(values: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
    """Mean per position ``(L,)`` of per-token values ``(N, L)``, each class's mean level removed first.

    Pooled over classes: the offsets come from the network (padding, the decoder), and pooling averages the noise
    of a few images per class. They sum to zero over positions, so a class's level is not moved.
    """
    centred = values.clone()
    for k in class_index.unique().tolist():
        centred[class_index == k] -= values[class_index == k].mean()
    return centred.mean(0)


def _mean_and_whitener(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(C,)`` and whitener ``(C, C)`` (see :class:`ScoreCalibration`) of tokens ``(M, C)``.

    The covariance is estimated on per-channel standardised tokens (their correlation matrix), so Ledoit-Wolf
    shrinks towards the diagonal covariance (the per-channel scales) and channels of very different scales (the
    backbone's stages) are treated alike; full shrinkage would give the per-channel standardisation.
    """
    channels = tokens.shape[1]
    mean = tokens.mean(0)
    if len(tokens) < 2:
        return mean, torch.eye(channels, dtype=tokens.dtype, device=tokens.device)
    samples = tokens.double() - mean.double()
    scale = samples.std(0)
    scale = scale.clamp_min(SCALE_FLOOR * float(scale.mean().clamp_min(1e-12)))
    correlation, _ = ledoit_wolf(samples / scale)
    eye = torch.eye(channels, dtype=correlation.dtype, device=correlation.device)
    cholesky = torch.linalg.cholesky(correlation + VARIANCE_FLOOR * eye)  # R = L L^T, so R^-1 = L^-T L^-1
    inverse = torch.linalg.solve_triangular(cholesky, eye, upper=False)  # L^-1
    return mean, (inverse.T / scale.unsqueeze(1)).to(tokens.dtype)  # diag(1 / scale) L^-T

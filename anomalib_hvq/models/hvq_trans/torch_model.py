# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""PyTorch model of HVQ-Trans (Lu et al., NeurIPS 2023)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_hvq.models.components.arguments import (
    check_grid,
    check_heads,
    check_non_negative,
    check_positive_ints,
    check_range,
)
from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor
from anomalib_hvq.models.components.input_check import check_model_input
from anomalib_hvq.models.components.positional_embedding import LearnedPositionalEmbedding2d
from anomalib_hvq.models.components.precision import float32_region
from anomalib_hvq.models.components.transformer import TransformerEncoder

from .anomaly_map import AnomalyMapGenerator
from .class_router import CentroidRouter, ClassRouting, codebook_fit_route
from .class_switch import ClassSwitchedLinear, check_class_index
from .codebook_recipe import CodebookRecipe
from .faithfulness import Faithfulness
from .hierarchical_quantizer import HierarchicalCodes, HierarchicalQuantizer
from .loss import HVQTransLoss, LossTerms
from .ot_score import ot_score
from .prototype_decoder import PrototypeDecoder, rename_legacy_decoder_keys
from .score_calibration import ScoreCalibration

logger = logging.getLogger(__name__)


class ScoreTerms(NamedTuple):
    """What the anomaly map is made of, per image."""

    reconstruction: torch.Tensor  # (B, C, h, w)
    features: torch.Tensor  # (B, C, h, w)
    ot: torch.Tensor  # (B, h*w), in float32
    class_index: torch.Tensor  # (B,), the class scored with
    routed: torch.Tensor  # (B,), the label-free router's class


class TrainingOutput(NamedTuple):
    """Loss terms and codes of one training forward pass."""

    terms: LossTerms
    codes: list[torch.Tensor]
    class_index: torch.Tensor


class HVQTransModel(nn.Module):
    """Frozen CNN features -> encoder -> hierarchical class-switched VQ -> prototype decoder -> features.

    Args:
        num_classes: Number of classes K (each has its own codebooks and output head).
        backbone: timm backbone name.
        pre_trained: Load ImageNet weights into the backbone.
        backbone_weights: Local timm- or lukemelas-format backbone weight file.
        feature_size: Token grid ``(h, w)`` the stage features are resized to.
        hidden_dim: Encoder width D; the decoder and lower codebooks use 2D.
        num_layers: Encoder layers = lower quantization levels = decoder layers.
        num_heads: Attention heads.
        ffn_dim: Hidden size of the feed-forward blocks.
        dropout: Dropout in the transformer layers.
        num_codes: Codes per codebook.
        decay: EMA decay of the codebooks.
        commitment_weight: Weight of the commitment loss.
        ot_weight: Weight of the OT score in the anomaly map.
        routing: How an image without a class is routed (label-free); ``oracle`` routes like ``centroid``
            here, since only the caller knows the true class.
        faithfulness: Official-code behaviours to restore (default: none); see :class:`Faithfulness`.
        codebook_recipe: Codebook initialisation and dead-code revival (default: the official neither).
        calibrate_score: Standardise the residual and balance the OT weight on normal validation images
            (:class:`ScoreCalibration`, fitted by :meth:`fit_score_calibration`); off: the paper's score.

    """

    def __init__(
        self,
        num_classes: int = 1,
        backbone: str = "tf_efficientnet_b4",
        pre_trained: bool = True,
        backbone_weights: str | Path | None = None,
        feature_size: tuple[int, int] = (14, 14),
        hidden_dim: int = 256,
        num_layers: int = 4,
        num_heads: int = 8,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        num_codes: int = 512,
        decay: float = 0.99,
        commitment_weight: float = 0.25,
        ot_weight: float = 80.0,
        routing: ClassRouting | str = ClassRouting.CENTROID,
        faithfulness: Faithfulness | None = None,
        codebook_recipe: CodebookRecipe | None = None,
        calibrate_score: bool = False,
    ) -> None:
        super().__init__()
        check_positive_ints(
            num_classes=num_classes, hidden_dim=hidden_dim, num_layers=num_layers, num_heads=num_heads, ffn_dim=ffn_dim
        )
        check_positive_ints(num_codes=num_codes)
        check_heads(hidden_dim, num_heads)
        check_grid("feature_size", feature_size)
        check_range("decay", decay, 0.0, 1.0, low_open=True, high_open=True)
        check_range("dropout", dropout, 0.0, 1.0, low_open=False, high_open=True)
        check_non_negative(commitment_weight=commitment_weight, ot_weight=ot_weight)
        self.faithfulness = faithfulness = faithfulness or Faithfulness()
        self.feature_extractor = MultiScaleFeatureExtractor(
            backbone,
            pre_trained,
            backbone_weights,
            feature_size=feature_size,
            train_mode=faithfulness.backbone_train_mode,
            static_padding_size=faithfulness.backbone_static_padding,
        )
        channels = self.feature_extractor.num_channels
        self.hidden_dim, self.num_layers, self.num_codes = hidden_dim, num_layers, num_codes
        self.decay = decay
        self.codebook_recipe = codebook_recipe or CodebookRecipe()
        self.routing = routing
        self.input_proj = nn.Conv2d(channels, hidden_dim, kernel_size=1)
        self.pos_embed = LearnedPositionalEmbedding2d(feature_size, hidden_dim)
        self.encoder = TransformerEncoder(hidden_dim, num_heads, ffn_dim, num_layers, dropout)
        self.decoder = PrototypeDecoder(2 * hidden_dim, num_heads, ffn_dim, num_layers, dropout)
        self.loss = HVQTransLoss(commitment_weight)
        self.anomaly_map = AnomalyMapGenerator(ot_weight)
        self.reset_classes(num_classes)
        self.use_score_calibration(calibrate_score)
        self._register_load_state_dict_pre_hook(rename_legacy_decoder_keys)

    @property
    def routing(self) -> ClassRouting:
        """Label-free routing method for images given without a class."""
        return self._routing

    @routing.setter
    def routing(self, value: ClassRouting | str) -> None:
        try:
            self._routing = ClassRouting(value)
        except ValueError:
            msg = f"Unknown routing {value!r}; choose one of {[method.value for method in ClassRouting]}."
            raise ValueError(msg) from None

    def reset_classes(self, num_classes: int) -> None:
        """(Re)create the class-dependent parts (codebooks, output heads, router) for ``num_classes`` classes."""
        if num_classes < 1:
            msg = f"num_classes must be at least 1, got {num_classes}."
            raise ValueError(msg)
        channels = self.feature_extractor.num_channels
        self.quantizer = HierarchicalQuantizer(
            num_classes,
            self.hidden_dim,
            self.num_layers,
            self.num_codes,
            self.decay,
            sequential=self.faithfulness.sequential_ema,
            revive_after=self.codebook_recipe.revive_after,
        )
        self.output_heads = ClassSwitchedLinear(num_classes, 2 * self.hidden_dim, channels)
        self.router = CentroidRouter(num_classes, channels)
        self.use_score_calibration(self.score_calibration)  # a new, unfitted one for the new class count

    @property
    def score_calibration(self) -> bool:
        """Whether the anomaly map is calibrated (``calibrate_score=True``)."""
        return self.anomaly_map.calibration is not None

    def use_score_calibration(self, enabled: bool) -> None:
        """Add (unfitted: the paper's score) or remove the score calibration."""
        extractor, weight = self.feature_extractor, self.anomaly_map.ot_weight
        calibration = ScoreCalibration(self.num_classes, extractor.num_channels, weight, extractor.feature_size)
        self.anomaly_map.calibration = calibration if enabled else None

    @property
    def num_classes(self) -> int:
        """Number of classes the model was built for."""
        return self.quantizer.top.num_classes

    def _encode(self, features: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Return the encoder outputs ``[E_0, ..., E_n]`` (each ``(B, h*w, D)``) and positions ``(h*w, D)``."""
        tokens = self.input_proj(features).flatten(2).transpose(1, 2)
        pos = self.pos_embed()
        return self.encoder(tokens, pos), pos

    def route(self, features: torch.Tensor, encoded: list[torch.Tensor]) -> torch.Tensor:
        """Label-free class per sample ``(B,)`` with the configured ``routing`` method."""
        if self.routing is ClassRouting.CODEBOOK_FIT:
            return codebook_fit_route(encoded[-1], self.quantizer.top.embed, self.router.count > 0)
        return self.router(features.mean(dim=(2, 3)))

    def _decode(
        self, codes: HierarchicalCodes, pos: torch.Tensor, class_index: torch.Tensor, shape: torch.Size
    ) -> torch.Tensor:
        """Reconstruct features of ``shape`` ``(B, C, h, w)`` from the prototypes the decoder attends to."""
        decoded = self.decoder(codes.memories, torch.cat([pos, pos], dim=-1))
        reconstruction = self.output_heads(decoded, class_index)
        return reconstruction.transpose(1, 2).reshape(shape)

    @torch.no_grad()
    def kmeans_init(self, features: torch.Tensor, class_index: torch.Tensor, chunk: int = 64) -> None:
        """Set the codebooks of the classes present to k-means centres of their encoder tokens (``codebook_recipe``).

        Args:
            features: Backbone features of training images ``(B, C, h, w)``.
            class_index: Class per image ``(B,)``.
            chunk: Images encoded at a time (bounds the memory of the encoder pass).

        """
        class_index = check_class_index(class_index, self.num_classes, features.shape[0]).to(features.device)
        finite = torch.isfinite(features.flatten(1)).all(1)
        if not bool(finite.all()):  # once per fit: a NaN image would make its class's centres NaN
            logger.warning("k-means initialisation: left out %d image(s) with NaN/inf features.", int((~finite).sum()))
            features, class_index = features[finite], class_index[finite]
        was_training = self.training
        self.eval()
        parts = [self._encode(part)[0] for part in features.split(chunk)]
        self.train(was_training)
        encoded = [torch.cat(level) for level in zip(*parts, strict=True)]
        self.quantizer.kmeans_init(encoded, class_index, self.codebook_recipe.kmeans_iterations)

    def compile_transformer(self, **options: object) -> None:
        """``torch.compile`` the encoder and decoder layers in place (parameter names and checkpoints unchanged).

        Only the dense transformer is compiled: the quantizer's data-dependent EMA update and the
        class checks would break the graph anyway. ``options`` go to ``torch.compile``.
        """
        self.encoder.compile(**options)
        for layer in self.decoder.layers:
            layer.compile(**options)

    def training_output(
        self,
        images: torch.Tensor | None,
        class_index: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> TrainingOutput:
        """Loss terms and codes for a training batch.

        Args:
            images: Normalised images ``(B, 3, H, W)``; unused (may be ``None``) when ``features`` are given.
            class_index: Class per image ``(B,)``; default class 0.
            features: Backbone features of the images ``(B, C, h, w)`` computed beforehand (e.g. by a
                feature cache); the backbone is then skipped. Exact when the backbone is in eval mode.

        """
        features = self.feature_extractor.features_for(images, features)
        if class_index is None:
            class_index = torch.zeros(features.shape[0], dtype=torch.long, device=features.device)
        class_index = check_class_index(class_index, self.num_classes, features.shape[0]).to(features.device)
        self.router.update(features.mean(dim=(2, 3)), class_index)
        encoded, pos = self._encode(features)
        codes = self.quantizer(encoded, class_index)
        reconstruction = self._decode(codes, pos, class_index, features.shape)
        return TrainingOutput(self.loss(reconstruction, features, codes.commitment), codes.codes, class_index)

    def reconstruct(self, features: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(B, C, h, w)`` of backbone features ``(B, C, h, w)`` by the classes ``(B,)``.

        In eval mode the codebooks stay as they are (no EMA step), so it serves as a validation probe.
        """
        class_index = check_class_index(class_index, self.num_classes, features.shape[0]).to(features.device)
        encoded, pos = self._encode(features)
        return self._decode(self.quantizer(encoded, class_index), pos, class_index, features.shape)

    def score_terms(self, images: torch.Tensor, class_index: torch.Tensor | None = None) -> ScoreTerms:
        """Reconstruction, features and OT score of images ``(B, 3, H, W)`` by the given or the routed classes."""
        features = self.feature_extractor(images)
        encoded, pos = self._encode(features)
        routed = self.route(features, encoded)
        if class_index is None:
            class_index = routed
        else:
            class_index = check_class_index(class_index, self.num_classes, features.shape[0]).to(features.device)
        codes = self.quantizer(encoded, class_index)
        reconstruction = self._decode(codes, pos, class_index, features.shape)
        # The paper's code scores the lowest level only; summing all levels is its commented-out variant.
        levels = list(zip(codes.inputs, self.quantizer.levels, strict=True))
        if not self.faithfulness.ot_all_levels:
            levels = levels[-1:]
        with float32_region(images.device.type):
            ot = sum(ot_score(tokens, level.codebook(class_index), self.num_codes) for tokens, level in levels)
        return ScoreTerms(reconstruction, features, ot, class_index, routed)

    def predict(
        self, images: torch.Tensor, class_index: torch.Tensor | None = None
    ) -> tuple[InferenceBatch, torch.Tensor]:
        """Score images ``(B, 3, H, W)`` with the given classes ``(B,)`` or, if ``None``, the routed ones.

        Returns:
            The predictions, and the label-free router's class per image ``(B,)`` (for routing accuracy).

        Raises:
            InputError: for integer images, NaN/inf or 0-255 values (not checked while traced for export).

        """
        check_model_input(images)
        terms = self.score_terms(images, class_index)
        # The score is the product: never in bfloat16, whatever the inference precision.
        with float32_region(images.device.type):
            anomaly_map, pred_score = self.anomaly_map(
                terms.reconstruction, terms.features, terms.ot, images.shape[-2:], terms.class_index
            )
        return InferenceBatch(pred_score=pred_score, anomaly_map=anomaly_map), terms.routed

    @torch.no_grad()
    def fit_score_calibration(
        self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]
    ) -> None:
        """Fit the score calibration (``calibrate_score=True``) on the normal images of ``batches``.

        Args:
            batches: Pre-processed images ``(B, 3, H, W)``, their classes ``(B,)`` (``None``: routed) and labels
                ``(B,)`` (``None``: all normal); only label-0 images count.

        Raises:
            InputError: for images that :meth:`predict` refuses (NaN/inf, integer or 0-255 values).

        """
        if not self.score_calibration:
            msg = "This model was built without score calibration (calibrate_score=False)."
            raise RuntimeError(msg)
        residuals, ots, classes = [], [], []
        for images, class_index, labels in batches:
            normal = torch.ones(len(images), dtype=torch.bool) if labels is None else labels.cpu() == 0
            if not normal.any():
                continue
            images = images[normal.to(images.device)]
            check_model_input(images)  # a NaN image would make every calibrated score NaN: the predict error
            terms = self.score_terms(images, None if class_index is None else class_index[normal])
            residuals.append(terms.reconstruction.float() - terms.features.float())
            ots.append(terms.ot.view(len(terms.ot), 1, *terms.features.shape[-2:]))
            classes.append(terms.class_index)
        if not classes:
            logger.warning("Score calibration: no normal validation image; the score stays uncalibrated.")
            return
        self.anomaly_map.calibration.fit(torch.cat(residuals), torch.cat(ots), torch.cat(classes))

    def forward(self, images: torch.Tensor, class_index: torch.Tensor | None = None) -> torch.Tensor | InferenceBatch:
        """Training loss (train mode) or anomaly predictions (eval mode).

        Args:
            images: Normalised images, ``(B, 3, H, W)``.
            class_index: Class per image ``(B,)``; ``None`` routes without labels (class 0 in training).

        Returns:
            In train mode the scalar loss; in eval mode an ``InferenceBatch`` with ``pred_score`` ``(B,)``
            and ``anomaly_map`` ``(B, 1, H, W)``.

        """
        if self.training:
            return self.training_output(images, class_index).terms.loss
        return self.predict(images, class_index)[0]

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""PyTorch model of UniAD (You et al., "A Unified Model for Multi-class Anomaly Detection", NeurIPS 2022)."""

from __future__ import annotations

from pathlib import Path

import torch
from anomalib.data import InferenceBatch
from torch import nn
from torch.nn import functional as F

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
from anomalib_hvq.models.components.transformer import TransformerEncoder

from .anomaly_map import AnomalyMapGenerator
from .feature_jitter import FeatureJitter
from .neighbor_mask import neighbor_mask
from .query_decoder import LayerWiseQueryDecoder


class UniADModel(nn.Module):
    """Frozen CNN features -> (jitter) -> neighbour-masked encoder -> layer-wise query decoder -> features.

    One model for all classes and no class label anywhere: the anomaly map is the error of reconstructing
    the backbone features.

    Args:
        backbone: timm backbone name.
        pre_trained: Load ImageNet weights into the backbone.
        backbone_weights: Local timm- or lukemelas-format backbone weight file.
        feature_size: Token grid ``(h, w)`` the stage features are resized to (input size / 16 in the paper).
        neighbor_size: Window ``(nh, nw)`` each query may not attend to (about half of ``feature_size``);
            ``None`` disables neighbour masking.
        hidden_dim: Transformer width.
        num_encoder_layers: Encoder layers.
        num_decoder_layers: Decoder layers (each with its own query table).
        num_heads: Attention heads.
        ffn_dim: Hidden size of the feed-forward blocks.
        dropout: Dropout in the transformer layers.
        jitter_scale: Feature jitter scale (0 disables it).
        jitter_prob: Probability that a training batch is jittered.

    """

    def __init__(
        self,
        backbone: str = "tf_efficientnet_b4",
        pre_trained: bool = True,
        backbone_weights: str | Path | None = None,
        feature_size: tuple[int, int] = (14, 14),
        neighbor_size: tuple[int, int] | None = (7, 7),
        hidden_dim: int = 256,
        num_encoder_layers: int = 4,
        num_decoder_layers: int = 4,
        num_heads: int = 8,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        jitter_scale: float = 20.0,
        jitter_prob: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive_ints(
            hidden_dim=hidden_dim,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
        )
        check_heads(hidden_dim, num_heads)
        check_grid("feature_size", feature_size)
        if neighbor_size is not None:
            check_grid("neighbor_size", neighbor_size)
        check_range("dropout", dropout, 0.0, 1.0, low_open=False, high_open=True)
        check_range("jitter_prob", jitter_prob, 0.0, 1.0, low_open=False, high_open=False)
        check_non_negative(jitter_scale=jitter_scale)
        feature_size = tuple(feature_size)
        mask = None if neighbor_size is None else neighbor_mask(feature_size, tuple(neighbor_size))
        # UniAD keeps the backbone in eval mode while training (running BatchNorm statistics, no drop-connect).
        self.feature_extractor = MultiScaleFeatureExtractor(
            backbone, pre_trained, backbone_weights, feature_size=feature_size
        )
        channels = self.feature_extractor.num_channels
        self.feature_jitter = FeatureJitter(jitter_scale, jitter_prob)
        self.input_proj = nn.Linear(channels, hidden_dim)
        self.pos_embed = LearnedPositionalEmbedding2d(feature_size, hidden_dim)
        self.encoder = TransformerEncoder(hidden_dim, num_heads, ffn_dim, num_encoder_layers, dropout)
        self.decoder = LayerWiseQueryDecoder(
            feature_size[0] * feature_size[1], hidden_dim, num_heads, ffn_dim, num_decoder_layers, dropout
        )
        self.output_proj = nn.Linear(hidden_dim, channels)
        # Derived from the configuration, so not saved in checkpoints.
        self.register_buffer("attn_mask", mask, persistent=False)
        self.anomaly_map = AnomalyMapGenerator()
        self._init_linear_layers()

    def _init_linear_layers(self) -> None:
        """Xavier-uniform weights and zero biases for every Linear, as the official initializer does.

        This includes the attention output projections (``nn.Linear`` subclasses); the packed attention
        input projections keep PyTorch's own (also Xavier) initialisation, embeddings and norms theirs.
        """
        for module in (self.input_proj, self.encoder, self.decoder, self.output_proj):
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def compile_transformer(self, **options: object) -> None:
        """``torch.compile`` the encoder and decoder in place (parameter names and checkpoints unchanged)."""
        self.encoder.compile(**options)
        self.decoder.compile(**options)

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """Reconstruct backbone features ``(B, C, h, w)``; jittered input in training, clean otherwise."""
        tokens = self.feature_jitter(features.flatten(2).transpose(1, 2))
        tokens = self.input_proj(tokens)
        pos = self.pos_embed()
        encoded = self.encoder(tokens, pos, self.attn_mask)[-1]
        decoded = self.decoder(encoded, pos, self.attn_mask)
        return self.output_proj(decoded).transpose(1, 2).reshape(features.shape)

    def training_loss(self, images: torch.Tensor | None, features: torch.Tensor | None = None) -> torch.Tensor:
        """``MSE(reconstruction, features)`` of normalised images ``(B, 3, H, W)``, the only term of UniAD's loss.

        ``features`` ``(B, C, h, w)`` computed beforehand (e.g. by a feature cache) skip the backbone; exact,
        since UniAD's backbone is in eval mode.
        """
        features = self.feature_extractor.features_for(images, features)
        return F.mse_loss(self.reconstruct(features), features)

    def forward(self, images: torch.Tensor) -> torch.Tensor | InferenceBatch:
        """Training loss (train mode) or anomaly predictions (eval mode).

        Args:
            images: Normalised images, ``(B, 3, H, W)``.

        Returns:
            In train mode the scalar loss (:meth:`training_loss`);
            in eval mode an ``InferenceBatch`` with ``pred_score`` ``(B,)`` and ``anomaly_map`` ``(B, 1, H, W)``.

        """
        if self.training:
            return self.training_loss(images)
        check_model_input(images)  # NaN/inf, 0-255 or integer images; skipped while traced for export
        features = self.feature_extractor(images)
        reconstruction = self.reconstruct(features)
        anomaly_map, pred_score = self.anomaly_map(reconstruction, features, images.shape[-2:])
        return InferenceBatch(pred_score=pred_score, anomaly_map=anomaly_map)

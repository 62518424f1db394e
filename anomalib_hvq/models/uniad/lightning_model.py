# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""UniAD as an anomalib ``AnomalibModule``.

Paper: You et al., "A Unified Model for Multi-class Anomaly Detection", NeurIPS 2022. One model for every
category of a dataset, without class labels: a transformer reconstructs frozen CNN features under
neighbour-masked attention, layer-wise learned queries and feature jitter, and anomalies are what it
cannot reconstruct. The baseline HVQ-Trans extends.
"""

from __future__ import annotations

from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT

from anomalib_hvq.models.components.input_check import naming_images
from anomalib_hvq.training.fast_training import FastTraining
from anomalib_hvq.training.optimization import LRSchedule
from anomalib_hvq.training.unified_recipe import UnifiedRecipeMixin

from .torch_model import UniADModel


class UniAD(UnifiedRecipeMixin, AnomalibModule):
    """UniAD: unified (multi-class) anomaly detection by masked feature reconstruction.

    Defaults are the official MVTec AD configuration. The recipe: AdamW 1e-4 / 1e-4, gradient clip 0.1 and
    learning rate x0.1 after 80% of the epochs (set by the model, :class:`UnifiedRecipeMixin`), 1000 epochs
    and batch 8 (``configs/uniad_mvtec.yaml``). Per-category metrics are added to the callbacks.

    Args:
        backbone: timm backbone name (official: EfficientNet-B4).
        pre_trained: Load ImageNet backbone weights.
        backbone_weights: Local timm- or lukemelas-format backbone weight file (no download).
        feature_size: Token grid ``(h, w)`` (input size / 16 in the paper: 14x14 at 224x224).
        neighbor_size: Neighbour window each query may not attend to (7x7; keep about half of
            ``feature_size``); ``None`` disables the mask.
        hidden_dim: Transformer width.
        num_encoder_layers: Encoder layers.
        num_decoder_layers: Layer-wise query decoder layers.
        num_heads: Attention heads.
        ffn_dim: Feed-forward width.
        dropout: Transformer dropout.
        jitter_scale: Feature jitter scale (0 disables the jitter).
        jitter_prob: Probability that a training batch is jittered.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_schedule: Learning-rate schedule (default: the papers' step after 80% of the epochs).
        fast_training: Training speed-ups (feature cache, ``torch.compile``; default: none); see
            :class:`FastTraining`. The feature cache is exact for UniAD: the backbone is in eval mode and the
            feature jitter is drawn in the training step, after the cache.
        pre_processor: Pre-processor, or ``True`` for the default (224x224, backbone normalisation).
        post_processor: Post-processor, or ``True`` for the default.
        evaluator: Evaluator, or ``True`` for the default (image/pixel AUROC and F1).
        visualizer: Visualizer, or ``True`` for the default.

    Example:
        UniAD at the demo's dimensions, next to HVQ-Trans on the same data (``configs/uniad_demo.yaml``):

        >>> from anomalib.engine import Engine
        >>> from anomalib_hvq import UniAD
        >>> from anomalib_hvq.data import Textures
        >>> model = UniAD(backbone="tf_efficientnet_lite0", hidden_dim=128, ffn_dim=512, lr=3e-4, dropout=0.0)
        >>> model.model.attn_mask.shape  # 7x7 neighbour mask over the 14x14 tokens
        torch.Size([196, 196])
        >>> engine = Engine(max_epochs=30)
        >>> engine.fit(model, datamodule=Textures(train_batch_size=16, num_workers=1))  # doctest: +SKIP

    """

    def __init__(
        self,
        backbone: str = "tf_efficientnet_b4",
        pre_trained: bool = True,
        backbone_weights: str | None = None,
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
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        lr_schedule: LRSchedule = LRSchedule(),  # noqa: B008 (frozen dataclass, safe as a default)
        fast_training: FastTraining = FastTraining(),  # noqa: B008
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(backbone=backbone)
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        self.lr, self.weight_decay, self.lr_schedule = lr, weight_decay, lr_schedule
        self.model = UniADModel(
            backbone=backbone,
            pre_trained=pre_trained,
            backbone_weights=backbone_weights,
            feature_size=feature_size,
            neighbor_size=neighbor_size,
            hidden_dim=hidden_dim,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            dropout=dropout,
            jitter_scale=jitter_scale,
            jitter_prob=jitter_prob,
        )
        self.use_fast_training(fast_training)

    def training_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Reconstruct the batch's (jittered) features and return the MSE loss (``None``: non-finite, skipped)."""
        del args, kwargs
        loss = self.model.training_loss(batch.image, self.cached_training.features(batch, self.device))
        if self.skip_non_finite(loss, batch):
            return None
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, batch_size=batch.image.shape[0])
        return {"loss": loss}

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Score the batch (used to fit the post-processor's normalisation and thresholds)."""
        del args, kwargs
        with naming_images(getattr(batch, "image_path", None)):
            predictions = self.model(batch.image)
        return batch.update(**predictions._asdict())


__all__ = ["UniAD"]

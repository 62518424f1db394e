# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Training from cached backbone features: decide whether it is exact, build the cache, serve the batches.

At the start of ``fit`` one pass over the training set computes the frozen backbone's features of every
image (through the same dataset, loader and pre-processing as training) into a :class:`FeatureCache`.
Until ``fit`` ends, the datamodule's ``train_dataloader`` then serves :class:`CachedFeatureDataset`
batches, which carry image paths and classes but no image: no file is decoded and the backbone never
runs again. The training step takes each batch's features from the cache by path.

The cache is exact only if a feature is a pure function of the image file. It is switched off, with a
log line saying why, when the backbone is in train mode or the training data has random augmentations.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from anomalib.data.utils import LabelName
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from .feature_cache import STORAGE_DTYPES, FeatureCache, feature_fingerprint

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule

logger = logging.getLogger(__name__)

CACHE_MODES = ("memory", "disk")
# Transforms whose output depends on the input only; any other one may be random and disables the cache.
DETERMINISTIC_TRANSFORMS = (
    v2.Resize,
    v2.CenterCrop,
    v2.Normalize,
    v2.ToDtype,
    v2.ToImage,
    v2.ToPureTensor,
    v2.Grayscale,
    v2.Pad,
    v2.Identity,
)


def cache_mode(value: bool | str | None) -> str | None:
    """Normalise the ``feature_cache`` option: ``None`` (off), ``"memory"`` (``True``) or ``"disk"``."""
    if value is None or value is False or value == "off":
        return None
    if value is True:
        return "memory"
    if value in CACHE_MODES:
        return value
    msg = f"feature_cache must be True/False or one of {CACHE_MODES}, got {value!r}."
    raise ValueError(msg)


def random_transforms(transform: object) -> list[str]:
    """Names of the transforms inside ``transform`` (a transform, ``Compose`` or ``None``) that may be random."""
    if transform is None:
        return []
    if isinstance(transform, v2.Compose):
        return [name for part in transform.transforms for name in random_transforms(part)]
    return [] if isinstance(transform, DETERMINISTIC_TRANSFORMS) else [type(transform).__name__]


def cache_blocker(backbone_train_mode: bool, datamodule: object) -> str | None:
    """Why cached features would differ from features computed on the fly, or ``None`` if they would not."""
    if backbone_train_mode:
        return "the backbone is in train mode (backbone_train_mode=True), so its features change every epoch"
    train_data = getattr(datamodule, "train_data", None)
    samples = getattr(train_data, "samples", None)
    if samples is None or "image_path" not in samples.columns:
        return "training data must come from an anomalib datamodule whose training set lists image paths"
    if getattr(datamodule, "external_collate_fn", None) is not None:
        return "the datamodule collates training batches with its own function (external_collate_fn)"
    collate_fn = getattr(train_data, "collate_fn", None)
    if not dataclasses.is_dataclass(getattr(collate_fn, "__self__", None)):
        return f"the training set's batches are not anomalib batches (collate_fn {collate_fn!r})"
    augmentations = [getattr(datamodule, "train_augmentations", None), getattr(train_data, "augmentations", None)]
    random = [name for transform in augmentations for name in random_transforms(transform)]
    if random:
        return f"the training data has augmentations that may be random ({', '.join(sorted(set(random)))})"
    return None


class CachedFeatureDataset(Dataset):
    """A training set's batches without their images, for training from cached features.

    Batches are of the wrapped dataset's batch type (e.g. ``MultiClassImageBatch``) with ``image_path``,
    ``gt_label`` and, where the dataset has them, ``class_index`` and ``category``; ``image`` is a
    ``(B, 3, 1, 1)`` placeholder (anomalib's pre-processor needs one). The model reads the features from
    the cache by ``image_path``. ``__getitems__`` builds a whole batch at once from columns read up front,
    so a loader needs no worker processes (which would be started again every epoch).

    Args:
        dataset: The anomalib training dataset (with a ``samples`` table and an anomalib ``collate_fn``).

    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        samples = dataset.samples
        self.batch_type = dataset.collate_fn.__self__
        fields = {field.name for field in dataclasses.fields(self.batch_type)}
        self.paths = [str(path) for path in samples.image_path]
        self.columns: dict[str, Any] = {
            "gt_label": torch.as_tensor(samples.label_index.to_numpy(dtype="int64", copy=True))
        }
        if "class_index" in fields and "class_index" in samples:
            self.columns["class_index"] = torch.as_tensor(samples.class_index.to_numpy(dtype="int64", copy=True))
        if "category" in fields and "category" in samples:
            self.columns["category"] = [str(name) for name in samples.category]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitems__(self, indices: list[int]) -> Any:
        """Batch of the samples ``indices``."""
        rows = torch.as_tensor(indices, dtype=torch.long)
        fields = {
            name: [column[i] for i in indices] if isinstance(column, list) else column[rows]
            for name, column in self.columns.items()
        }
        if bool((fields["gt_label"] == LabelName.UNKNOWN).any()):
            del fields["gt_label"]
        return self.batch_type(
            image=torch.zeros(len(indices), 3, 1, 1), image_path=[self.paths[i] for i in indices], **fields
        )

    def __getitem__(self, index: int) -> Any:
        """Batch of the one sample ``index``."""
        return self.__getitems__([index])

    @staticmethod
    def collate_fn(batch: Any) -> Any:
        """Batches come whole from :meth:`__getitems__`."""
        return batch

    def loader(self, batch_size: int) -> DataLoader:
        """Shuffled training loader over this set, in the main process."""
        return DataLoader(self, batch_size=batch_size, shuffle=True, num_workers=0, collate_fn=self.collate_fn)


def _restore_loader(datamodule: object) -> None:
    """Remove the cached-batch loader from ``datamodule`` if it has one, revealing its own ``train_dataloader``."""
    if getattr(getattr(datamodule, "__dict__", {}).get("train_dataloader"), "from_feature_cache", False):
        del datamodule.train_dataloader


class CachedTraining:
    """Feature cache of one model's ``fit``: started in ``on_fit_start``, used by ``training_step``.

    Args:
        mode: ``False``/``None`` (off), ``True``/``"memory"`` (features in memory on the training device) or
            ``"disk"`` (memory-mapped file, reused by later runs while it is valid).
        directory: Folder of the disk cache; default ``./feature_cache/<datamodule name>``.
        dtype: Storage precision: ``"float32"`` (exact), ``"float16"`` or ``"bfloat16"`` (half the memory).

    """

    def __init__(self, mode: bool | str | None = False, directory: str | Path | None = None, dtype: str = "float32"):
        self.mode = cache_mode(mode)
        if dtype not in STORAGE_DTYPES:
            msg = f"feature_cache_dtype must be one of {sorted(STORAGE_DTYPES)}, got {dtype!r}."
            raise ValueError(msg)
        if directory is not None and Path(directory).exists() and not Path(directory).is_dir():
            msg = (
                f"feature_cache_dir={str(directory)!r} is a file, not a folder. Pass a folder (created if missing), "
                "or None for ./feature_cache/<datamodule name>."
            )
            raise ValueError(msg)
        self.directory, self.dtype = directory, dtype
        self.cache: FeatureCache | None = None
        self._datamodule: Any = None

    def start(self, module: LightningModule) -> None:
        """Build or validate the cache for the trainer's training set and serve that set from it."""
        self.stop()
        datamodule = module.trainer.datamodule
        _restore_loader(datamodule)  # one left by a crashed fit would serve batches without images
        if self.mode is None:
            return
        extractor = module.model.feature_extractor
        reason = cache_blocker(extractor.train_mode, datamodule)
        if reason is not None:
            logger.warning("Feature cache disabled: %s. Training computes the backbone features every step.", reason)
            return
        train_data = datamodule.train_data
        transform = getattr(module.pre_processor, "transform", None) if module.pre_processor else None
        directory = None
        if self.mode == "disk":
            directory = Path(self.directory or Path("feature_cache") / getattr(datamodule, "name", "data"))
        cache = FeatureCache(directory, self.dtype, module.device)
        key = feature_fingerprint(extractor, transform, train_data.augmentations)
        paths = list(train_data.samples.image_path)
        start, trainer = time.perf_counter(), module.trainer
        # On disk, rank 0 builds the shared file first; the other ranks then find it valid and map it.
        shared = directory is not None and trainer.world_size > 1
        if shared and not trainer.is_global_zero:
            trainer.strategy.barrier("feature_cache")
        computed = self._prepare(cache, paths, key, module, train_data, transform)
        if shared and trainer.is_global_zero:
            trainer.strategy.barrier("feature_cache")
        logger.info(
            "Feature cache (%s, %s%s): %d images, %d computed, %d reused, ready in %.1f s.",
            self.mode,
            self.dtype,
            f", {directory}" if directory is not None else "",
            len(cache),
            computed,
            len(cache) - computed,
            time.perf_counter() - start,
        )
        self.cache, self._datamodule = cache, datamodule
        # Until stop(): Lightning asks the datamodule for its loader after on_fit_start; this instance
        # attribute answers in place of the class's method (train_data itself stays untouched).
        cached = CachedFeatureDataset(train_data)

        def train_dataloader() -> DataLoader:
            return cached.loader(datamodule.train_batch_size)

        train_dataloader.from_feature_cache = True
        datamodule.train_dataloader = train_dataloader

    def features(self, batch: Any, device: torch.device) -> torch.Tensor | None:
        """Return the cached float32 features ``(B, C, h, w)`` of the batch's images, or ``None`` without a cache."""
        if self.cache is None:
            return None
        return self.cache.lookup(batch.image_path).to(device, torch.float32, non_blocking=True)

    def stop(self) -> None:
        """Give the datamodule its own training loader back and free the in-memory features."""
        _restore_loader(self._datamodule)
        if self.cache is not None:
            self.cache.release()
        self.cache, self._datamodule = None, None

    @staticmethod
    def _prepare(
        cache: FeatureCache, paths: list[str], key: str, module: LightningModule, dataset: Any, transform: Any
    ) -> int:
        """Fill ``cache`` with the features of ``paths`` (positions of ``dataset``), with progress output."""
        datamodule = module.trainer.datamodule
        extractor, device = module.model.feature_extractor, module.device

        def compute(positions: list[int]) -> Iterator[tuple[list[int], torch.Tensor]]:
            loader = DataLoader(
                Subset(dataset, positions),
                batch_size=datamodule.train_batch_size,
                num_workers=datamodule.num_workers,
                collate_fn=dataset.collate_fn,
            )
            done, start, next_report = 0, time.perf_counter(), 0.1
            for batch in loader:
                # The images go through exactly what the training step would see (device, pre-processor).
                images = batch.image.to(device)
                images = transform(images) if transform is not None else images
                with torch.no_grad():
                    features = extractor(images)
                yield positions[done : done + len(features)], features
                done += len(features)
                if done / len(positions) >= next_report or done == len(positions):
                    elapsed = time.perf_counter() - start
                    logger.info("Feature cache: %d/%d images computed (%.0f s).", done, len(positions), elapsed)
                    next_report += 0.1

        # The preparation pass must not shift the random state training starts from (shuffling, dropout).
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return cache.prepare(paths, key, compute)

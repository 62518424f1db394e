# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Cache of frozen-backbone features per training image, in memory or in a memory-mapped file.

With the backbone in eval mode and no random augmentation, the ``(C, h, w)`` feature map of a training
image is a pure function of the image file, the pre-processing and the backbone weights. The cache
stores it once and hands it back for every later epoch.

Validity: every entry records a digest of its image file's bytes, and the whole cache a ``key``
fingerprinting everything else the features depend on (see :func:`feature_fingerprint`).
:meth:`FeatureCache.prepare` recomputes the entries whose image changed and rebuilds everything when
the key changed, logging why; a stale entry is never handed out.

On disk (``directory`` given) the features live in ``features-<id>.bin`` (raw tensor, memory-mapped)
described by ``index.json``, which also records a digest of each entry's stored bytes: an entry damaged on
disk (same size, other bytes) is recomputed, never trained on. A build writes ``features-<id>.bin.tmp``,
renames it, then replaces the index (each by ``os.replace``), so an interrupted build leaves the previous
cache intact; a damaged index is rebuilt; feature files no index names (left by killed runs) are removed.
Builds in one folder take turns (a file lock), so that a removal never hits a build in progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

try:
    import fcntl
except ImportError:  # Windows: no build lock, orphan files are left in place
    fcntl = None

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# compute(positions) yields (positions, features (n, C, h, w)) for the requested positions of `paths`.
ComputeFeatures = Callable[[list[int]], Iterable[tuple[list[int], torch.Tensor]]]


def file_stamp(path: str) -> str:
    """Digest of an image file's bytes: any change of content changes it, whatever size and time stamps say.

    Each ``prepare`` reads the training set once (training without the cache reads it every epoch);
    size and modification time would miss a file replaced by one of the same size with its time stamps
    kept (``cp -p``, ``rsync -a``, archives).
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_digest(features: torch.Tensor) -> str:
    """Digest of one stored entry's bytes ``(C, h, w)`` (any storage dtype)."""
    data = features.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def feature_fingerprint(extractor: nn.Module, *transforms: object) -> str:
    """Hash of what a feature depends on besides the image file.

    Covers the extractor's structure (``repr``: backbone layers, static padding), its feature size and train
    mode, every tensor of its ``state_dict`` (weights and BatchNorm statistics) and the ``repr`` of each
    transform (pre-processing: resize size, normalisation; dataset augmentations).
    """
    digest = hashlib.sha256()
    settings = (
        type(extractor).__name__,
        getattr(extractor, "feature_size", None),
        getattr(extractor, "train_mode", None),
    )
    digest.update(repr((settings, extractor, *transforms)).encode())
    for name, tensor in extractor.state_dict().items():
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class _Index:
    """What a cache holds: its key, storage layout, each image's content digest in row order, entry digests (disk)."""

    key: str
    dtype: str
    shape: tuple[int, ...]
    stamps: dict[str, str]
    digests: dict[str, str] = dataclasses.field(default_factory=dict)
    file: str | None = None  # the feature file's name (disk)

    @property
    def rows(self) -> dict[str, int]:
        """Row of each image path."""
        return {path: row for row, path in enumerate(self.stamps)}

    @property
    def numel(self) -> int:
        """Number of stored values."""
        return len(self.stamps) * torch.Size(self.shape).numel()


class FeatureCache:
    """Backbone features ``(C, h, w)`` keyed by image path.

    Args:
        directory: Folder of the memory-mapped cache file; ``None`` keeps the features in memory.
        dtype: Storage precision, ``"float32"`` (exact), ``"float16"`` or ``"bfloat16"`` (half the memory;
            features rounded to 11 or 8 significant bits).
        device: Device of an in-memory cache (e.g. the training GPU, so that lookups copy nothing).

    """

    def __init__(
        self, directory: str | Path | None = None, dtype: str = "float32", device: torch.device | str = "cpu"
    ) -> None:
        if dtype not in STORAGE_DTYPES:
            msg = f"Unknown feature cache dtype {dtype!r}; choose one of {sorted(STORAGE_DTYPES)}."
            raise ValueError(msg)
        self.directory = Path(directory) if directory is not None else None
        self.dtype = dtype
        self.device = torch.device("cpu") if self.directory is not None else torch.device(device)
        self._index: _Index | None = None
        self._rows: dict[str, int] = {}
        self._storage: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def prepare(self, paths: Sequence[str], key: str, compute: ComputeFeatures) -> int:
        """Make the cache hold valid features for every path, computing only what is missing or stale.

        Args:
            paths: Image paths (duplicates allowed: each file is computed once).
            key: Fingerprint of everything else the features depend on (:func:`feature_fingerprint`).
            compute: Computes the features of positions of ``paths``, yielding ``(positions, features)`` batches.

        Returns:
            Number of images whose features were computed.

        """
        with self._build_lock():
            return self._prepare(paths, key, compute)

    def _prepare(self, paths: Sequence[str], key: str, compute: ComputeFeatures) -> int:
        unique = list(dict.fromkeys(paths))
        stamps = {path: file_stamp(path) for path in unique}
        old, old_storage = self._stored()
        self._remove_orphans(keep=old.file if old is not None else None)
        if old is not None and (old.key, old.dtype) != (key, self.dtype):
            reason = "storage dtype" if old.key == key else "backbone, its weights or the pre-processing"
            logger.info("Feature cache: the %s changed since it was built; rebuilding all of it.", reason)
            old = None
        old_stamps = old.stamps if old is not None else {}
        stale = [path for path in unique if path in old_stamps and old_stamps[path] != stamps[path]]
        if stale:
            logger.info(
                "Feature cache: %d image(s) changed since they were cached, e.g. %s; recomputing.", len(stale), stale[0]
            )
        reused = [path for path in unique if old_stamps.get(path) == stamps[path]]
        damaged = self._damaged(old, old_storage, reused)
        if damaged:
            logger.warning(
                "Feature cache: %d cached entries damaged on disk (their bytes changed), e.g. %s; recomputing them.",
                len(damaged),
                damaged[0],
            )
            reused = [path for path in reused if path not in set(damaged)]
        if old is not None and len(reused) == len(unique) == len(old_stamps):
            self._index, self._rows, self._storage = old, old.rows, old_storage
            return 0
        index = _Index(key, self.dtype, old.shape if old is not None else (), stamps)
        storage, target = self._allocate(index) if reused else (None, None)
        rows = index.rows
        if reused:
            old_rows = old.rows
            storage[torch.tensor([rows[p] for p in reused])] = old_storage[torch.tensor([old_rows[p] for p in reused])]
            index.digests = {path: old.digests[path] for path in reused if path in old.digests}
        # compute() speaks in positions of `paths`; the first position of each missing file stands for it.
        first_position = {path: position for position, path in reversed(list(enumerate(paths)))}
        kept = set(reused)
        missing = [first_position[path] for path in unique if path not in kept]
        for positions, features in compute(missing):
            if storage is None:  # nothing reused: the feature shape comes with the first batch
                index.shape = tuple(features.shape[1:])
                storage, target = self._allocate(index)
            storage[torch.tensor([rows[paths[p]] for p in positions])] = features.to(storage.device, storage.dtype)
        if storage is None:
            msg = "The feature cache got no images to cache: the training set is empty."
            raise ValueError(msg)
        if target is not None:  # disk: a digest of each new entry's stored bytes
            index.digests |= {paths[p]: entry_digest(storage[rows[paths[p]]]) for p in missing}
        self._save(index, target)
        self._index, self._rows, self._storage = index, rows, storage
        return len(missing)

    def _damaged(self, old: _Index | None, storage: torch.Tensor | None, reused: list[str]) -> list[str]:
        """Reused disk entries whose stored bytes no longer match their digest (one read of the file)."""
        if self.directory is None or old is None or storage is None:
            return []
        rows = old.rows
        return [path for path in reused if old.digests.get(path) != entry_digest(storage[rows[path]])]

    def lookup(self, paths: Sequence[str]) -> torch.Tensor:
        """Features ``(B, C, h, w)`` of ``paths``, in the storage dtype, on the storage device."""
        if self._storage is None:
            msg = "The feature cache is empty: call prepare() first."
            raise RuntimeError(msg)
        try:
            rows = [self._rows[path] for path in paths]
        except KeyError as error:
            msg = f"Image {error.args[0]} is not in the feature cache ({len(self)} images): prepare() it first."
            raise KeyError(msg) from None
        return self._storage[torch.tensor(rows, device=self._storage.device)]

    def release(self) -> None:
        """Drop the features from memory (a disk cache stays on disk for the next :meth:`prepare`)."""
        self._index, self._rows, self._storage = None, {}, None

    def _allocate(self, index: _Index) -> tuple[torch.Tensor, Path | None]:
        """Empty storage for ``index``: a tensor on ``device``, or a new memory-mapped ``.bin.tmp`` file."""
        dtype = STORAGE_DTYPES[index.dtype]
        if self.directory is None:
            return torch.empty((len(index.stamps), *index.shape), dtype=dtype, device=self.device), None
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"features-{uuid.uuid4().hex[:12]}.bin"
        storage = torch.from_file(str(_temporary(target)), shared=True, size=index.numel, dtype=dtype)
        return storage.view(len(index.stamps), *index.shape), target

    def _stored(self) -> tuple[_Index | None, torch.Tensor | None]:
        """Return the stored cache: this object's (memory), or the folder's if readable and consistent (disk)."""
        if self.directory is None:
            return self._index, self._storage
        path = self.directory / "index.json"
        if not path.is_file():
            return None, None
        try:
            data = json.loads(path.read_text())
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('version')}, this version reads {FORMAT_VERSION}")
            stamps = {image: stamp for image, stamp, _ in data["entries"]}
            digests = {image: digest for image, _, digest in data["entries"]}
            index = _Index(data["key"], data["dtype"], tuple(data["shape"]), stamps, digests, data["file"])
            file = self.directory / data["file"]
            dtype = STORAGE_DTYPES[index.dtype]
            if file.stat().st_size != index.numel * dtype.itemsize:
                raise ValueError("the feature file does not match the index")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # JSONDecodeError is a ValueError: a damaged index is rebuilt like a missing one.
            logger.warning("Feature cache at %s is unusable (%s); rebuilding it.", self.directory, error)
            return None, None
        storage = torch.from_file(str(file), shared=False, size=index.numel, dtype=dtype)
        return index, storage.view(len(stamps), *index.shape)

    def _save(self, index: _Index, target: Path | None) -> None:
        """Disk: move the finished feature file in place, then replace the index (each atomically), then clean up."""
        if self.directory is None or target is None:
            return
        os.replace(_temporary(target), target)
        path = self.directory / "index.json"
        data = {"version": FORMAT_VERSION, "key": index.key, "dtype": index.dtype, "shape": list(index.shape)}
        entries = [[image, stamp, index.digests[image]] for image, stamp in index.stamps.items()]
        data |= {"file": target.name, "entries": entries}
        temporary = _temporary(path)
        temporary.write_text(json.dumps(data))
        os.replace(temporary, path)
        index.file = target.name
        self._remove_orphans(keep=target.name)

    def _remove_orphans(self, keep: str | None) -> None:
        """Delete the feature files (finished or not) other than ``keep``: left by replaced caches or killed builds.

        Only under the build lock, which no other build holds then; without a lock (no ``fcntl``) nothing is removed.
        """
        if self.directory is None or fcntl is None or not self.directory.is_dir():
            return
        for file in self.directory.glob("features-*.bin*"):
            if file.name != keep:
                logger.info("Feature cache: removing %s, which no index names (an old or interrupted build).", file)
                file.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _build_lock(self) -> Iterator[None]:
        """Hold the folder's build lock (disk caches where ``fcntl`` exists); others wait."""
        if self.directory is None or fcntl is None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "build.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _temporary(path: Path) -> Path:
    """Name of ``path`` while it is being written."""
    return path.with_name(path.name + ".tmp")

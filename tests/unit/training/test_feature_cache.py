# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""FeatureCache: lookups, partial rebuilds of changed images, full rebuilds on a new key, disk reuse, dtypes."""

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from tiny_hvq import TINY_HVQ

from anomalib_hvq.models.components.feature_extractor import MultiScaleFeatureExtractor
from anomalib_hvq.models.components.static_padding import apply_static_same_padding
from anomalib_hvq.training.feature_cache import FeatureCache, feature_fingerprint
from anomalib_hvq.training.pre_processing import backbone_pre_processor


class FakeBackbone:
    """compute() for FeatureCache: features derived from the file bytes, recording which positions it saw."""

    def __init__(self, paths: list[str], offset: float = 0.0) -> None:
        self.paths, self.offset, self.calls = paths, offset, []

    def feature(self, path: str) -> torch.Tensor:
        data = torch.tensor(list(Path(path).read_bytes()), dtype=torch.float32)
        return (data.sum() + self.offset + torch.arange(2 * 3 * 3, dtype=torch.float32) / 7).view(2, 3, 3)

    def __call__(self, positions: list[int]):
        self.calls.append(list(positions))
        for start in range(0, len(positions), 2):  # batches of two
            chunk = positions[start : start + 2]
            yield chunk, torch.stack([self.feature(self.paths[p]) for p in chunk])


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    paths = []
    for index in range(5):
        path = tmp_path / "images" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes([index, 2 * index, 7]))
        paths.append(str(path))
    return paths


def _rewrite(path: str, content: bytes) -> None:
    """Change a file's content and make sure its mtime moves (coarse file-system clocks)."""
    stat = os.stat(path)
    Path(path).write_bytes(content)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.mark.parametrize("directory", [None, "disk"])
def test_lookup_returns_each_images_features_and_computes_duplicates_once(images, tmp_path, directory) -> None:
    cache = FeatureCache(tmp_path / directory if directory else None)
    paths = [*images, images[1]]  # a duplicated image is computed once
    backbone = FakeBackbone(paths)
    assert cache.prepare(paths, "key", backbone) == 5
    assert sorted(p for call in backbone.calls for p in call) == [0, 1, 2, 3, 4]
    looked_up = cache.lookup([images[3], images[0], images[3]])
    expected = torch.stack([backbone.feature(images[i]) for i in (3, 0, 3)])
    assert looked_up.dtype == torch.float32 and torch.equal(looked_up, expected)
    with pytest.raises(KeyError, match="not in the feature cache"):
        cache.lookup(["/no/such.png"])


@pytest.mark.parametrize("directory", [None, "disk"])
def test_changed_image_is_recomputed_and_the_rest_reused(images, tmp_path, directory, caplog) -> None:
    cache = FeatureCache(tmp_path / directory if directory else None)
    cache.prepare(images, "key", FakeBackbone(images))
    _rewrite(images[2], b"changed content")
    backbone = FakeBackbone(images)
    with caplog.at_level(logging.INFO):
        assert cache.prepare(images, "key", backbone) == 1
    assert backbone.calls == [[2]]
    assert "1 image(s) changed" in caplog.text
    assert torch.equal(cache.lookup([images[2]])[0], backbone.feature(images[2]))
    assert torch.equal(cache.lookup([images[0]])[0], backbone.feature(images[0]))
    # Nothing changed any more: nothing is computed.
    assert cache.prepare(images, "key", FakeBackbone(images)) == 0


@pytest.mark.parametrize("directory", [None, "disk"])
def test_image_replaced_with_same_size_and_time_stamps_is_recomputed(images, tmp_path, directory) -> None:
    cache = FeatureCache(tmp_path / directory if directory else None)
    cache.prepare(images, "key", FakeBackbone(images))
    stat = os.stat(images[4])
    Path(images[4]).write_bytes(bytes([9, 9, 9]))  # as many bytes as before
    os.utime(images[4], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` or `rsync -a` would leave it
    assert os.stat(images[4]).st_size == stat.st_size
    backbone = FakeBackbone(images)
    assert cache.prepare(images, "key", backbone) == 1
    assert backbone.calls == [[4]]
    assert torch.equal(cache.lookup([images[4]])[0], backbone.feature(images[4]))


@pytest.mark.parametrize("directory", [None, "disk"])
def test_new_key_rebuilds_everything(images, tmp_path, directory, caplog) -> None:
    cache = FeatureCache(tmp_path / directory if directory else None)
    cache.prepare(images, "old backbone", FakeBackbone(images))
    new_backbone = FakeBackbone(images, offset=100.0)
    with caplog.at_level(logging.INFO):
        assert cache.prepare(images, "new backbone", new_backbone) == 5
    assert "rebuilding all of it" in caplog.text
    torch.testing.assert_close(cache.lookup(images[:1])[0], new_backbone.feature(images[0]))


def test_new_images_are_added_and_removed_ones_dropped(images, tmp_path) -> None:
    cache = FeatureCache(tmp_path / "disk")
    cache.prepare(images[:3], "key", FakeBackbone(images[:3]))
    paths = images[1:]
    backbone = FakeBackbone(paths)
    assert cache.prepare(paths, "key", backbone) == 2
    assert backbone.calls == [[2, 3]]  # positions of images[3] and images[4] in `paths`
    assert len(cache) == 4
    assert torch.equal(cache.lookup([images[4]])[0], backbone.feature(images[4]))


def test_disk_cache_is_reused_by_a_new_process_and_survives_a_bad_index(images, tmp_path, caplog) -> None:
    folder = tmp_path / "disk"
    FeatureCache(folder).prepare(images, "key", FakeBackbone(images))
    index = json.loads((folder / "index.json").read_text())
    assert [path for path, *_ in index["entries"]] == images
    assert len(list(folder.glob("features-*.bin"))) == 1
    reopened = FeatureCache(folder)  # e.g. the next training run
    assert reopened.prepare(images, "key", FakeBackbone(images)) == 0
    assert torch.equal(reopened.lookup(images), torch.stack([FakeBackbone(images).feature(p) for p in images]))
    # A feature file that does not match its index (truncated) is never used.
    feature_file = folder / index["file"]
    feature_file.write_bytes(feature_file.read_bytes()[:-4])
    with caplog.at_level(logging.WARNING):
        assert FeatureCache(folder).prepare(images, "key", FakeBackbone(images)) == 5
    assert "does not match the index" in caplog.text
    assert len(list(folder.glob("features-*.bin"))) == 1  # the old file was replaced, not left behind
    # An index written by an older version of the cache (other stamps) is rebuilt, not misread.
    index = json.loads((folder / "index.json").read_text())
    (folder / "index.json").write_text(json.dumps(index | {"version": 1}))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert FeatureCache(folder).prepare(images, "key", FakeBackbone(images)) == 5
    assert "format 1" in caplog.text


@pytest.mark.parametrize(("dtype", "tolerance"), [("float16", 1e-3), ("bfloat16", 8e-3)])
def test_half_precision_storage(images, dtype, tolerance) -> None:
    cache = FeatureCache(dtype=dtype)
    backbone = FakeBackbone(images)
    cache.prepare(images, "key", backbone)
    stored = cache.lookup(images)
    assert stored.dtype == getattr(torch, dtype)
    expected = torch.stack([backbone.feature(p) for p in images])
    torch.testing.assert_close(stored.float(), expected, rtol=tolerance, atol=0)
    # Switching the storage dtype is a rebuild, not a reinterpretation of the stored bytes.
    assert FeatureCache(dtype="float32").prepare(images, "key", backbone) == 5
    with pytest.raises(ValueError, match="Unknown feature cache dtype"):
        FeatureCache(dtype="int8")


def test_fingerprint_changes_with_weights_padding_and_pre_processing() -> None:
    torch.manual_seed(0)
    extractor = MultiScaleFeatureExtractor(TINY_HVQ["backbone"], pre_trained=False, feature_size=(4, 4))
    transform = backbone_pre_processor(TINY_HVQ["backbone"], (64, 64)).transform
    key = feature_fingerprint(extractor, transform)
    assert feature_fingerprint(extractor, transform) == key
    assert feature_fingerprint(extractor, backbone_pre_processor(TINY_HVQ["backbone"], (96, 96)).transform) != key
    with torch.no_grad():
        extractor.backbone.conv_stem.weight[0, 0, 0, 0] += 1e-3
    changed_weights = feature_fingerprint(extractor, transform)
    assert changed_weights != key
    apply_static_same_padding(extractor.backbone, 380)
    assert feature_fingerprint(extractor, transform) != changed_weights


def _expected(images: list[str]) -> torch.Tensor:
    return torch.stack([FakeBackbone(images).feature(p) for p in images])


def test_disk_entry_damaged_at_the_same_size_is_recomputed_alone(images, tmp_path, caplog) -> None:
    folder = tmp_path / "disk"
    FeatureCache(folder).prepare(images, "key", FakeBackbone(images))
    index = json.loads((folder / "index.json").read_text())
    feature_file = folder / index["file"]
    data = bytearray(feature_file.read_bytes())
    row_bytes = len(data) // len(images)
    data[2 * row_bytes + 8 : 2 * row_bytes + 16] = b"\xff" * 8  # entry 2 only; NaN in float32
    feature_file.write_bytes(bytes(data))
    reopened, backbone = FeatureCache(folder), FakeBackbone(images)
    with caplog.at_level(logging.WARNING):
        assert reopened.prepare(images, "key", backbone) == 1
    assert backbone.calls == [[2]]
    assert "1 cached entries damaged on disk" in caplog.text
    assert torch.equal(reopened.lookup(images), _expected(images))
    assert FeatureCache(folder).prepare(images, "key", FakeBackbone(images)) == 0  # repaired for good


def test_a_damaged_index_is_rebuilt_and_reused_afterwards(images, tmp_path, caplog) -> None:
    folder = tmp_path / "disk"
    FeatureCache(folder).prepare(images, "key", FakeBackbone(images))
    (folder / "index.json").write_text('{"version": 3, "key": "ke')  # cut short, e.g. a full disk
    cache = FeatureCache(folder)
    with caplog.at_level(logging.WARNING):
        assert cache.prepare(images, "key", FakeBackbone(images)) == 5
    assert "unusable" in caplog.text
    assert torch.equal(cache.lookup(images), _expected(images))
    assert FeatureCache(folder).prepare(images, "key", FakeBackbone(images)) == 0
    assert len(list(folder.glob("features-*"))) == 1


def test_an_interrupted_build_keeps_the_previous_cache_and_its_files_are_removed(images, tmp_path) -> None:
    folder = tmp_path / "disk"
    FeatureCache(folder).prepare(images[:3], "key", FakeBackbone(images[:3]))
    kept = json.loads((folder / "index.json").read_text())["file"]

    def killed(positions):
        yield positions[:1], torch.stack([FakeBackbone(images).feature(images[3])])
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the build

    with pytest.raises(KeyboardInterrupt):
        FeatureCache(folder).prepare(images, "key", killed)
    assert json.loads((folder / "index.json").read_text())["file"] == kept  # the index still names the old file
    (folder / "features-0123456789ab.bin").write_bytes(bytes(720))  # a finished file of a run killed before its index
    assert len(list(folder.glob("features-*"))) == 3
    assert FeatureCache(folder).prepare(images[:3], "key", FakeBackbone(images[:3])) == 0
    assert [file.name for file in folder.glob("features-*")] == [kept]

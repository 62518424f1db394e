# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Textures: deterministic, cached, real photos with masked defects."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomalib_hvq.data import Textures
from anomalib_hvq.data.textures import CATEGORIES, DEFECT_TYPES, ensure_textures, generate_textures
from anomalib_hvq.data.textures.generator import MARKER_NAME

SMALL = {"n_train": 2, "n_test_good": 1, "n_per_defect": 1, "size": 64}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def textures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Textures, float]:
    """The full default data set, set up, with the seconds its generation took."""
    datamodule = Textures(root=tmp_path_factory.mktemp("textures") / "textures", num_workers=0, eval_batch_size=48)
    start = time.perf_counter()
    datamodule.prepare_data()
    seconds = time.perf_counter() - start
    datamodule.setup()
    return datamodule, seconds


def test_generation_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = _files(generate_textures(tmp_path / "a", seed=3, **SMALL))
    again = _files(generate_textures(tmp_path / "b", seed=3, **SMALL))
    other = _files(generate_textures(tmp_path / "c", seed=4, **SMALL))
    assert first == again
    images = [name for name in first if name.endswith(".png")]
    assert len(images) == len(CATEGORIES) * (2 + 1 + 2 * len(DEFECT_TYPES))
    assert all(first[name] != other[name] for name in images if "_mask" not in name)


def test_folder_is_reused_or_rebuilt_by_seed(tmp_path: Path) -> None:
    root = tmp_path / "textures"
    ensure_textures(root, seed=0, **SMALL)
    probe = root / "brick" / "train" / "good" / "000.png"
    os.utime(probe, (0, 0))  # an untouched file keeps this mtime
    ensure_textures(root, seed=0, **SMALL)
    assert probe.stat().st_mtime == 0
    ensure_textures(root, seed=1, **SMALL)
    assert probe.stat().st_mtime > 0
    assert '"seed": 1' in (root / MARKER_NAME).read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers
    umask = os.umask(0)
    os.umask(umask)
    assert root.stat().st_mode & 0o777 == 0o777 & ~umask  # not a private temporary folder's 0700


def test_default_data_set_layout_and_speed(textures: tuple[Textures, float]) -> None:
    datamodule, seconds = textures
    root = datamodule.root
    assert seconds < 20
    assert datamodule.class_names == sorted(CATEGORIES)
    assert len(DEFECT_TYPES) >= 4
    for category in CATEGORIES:
        assert len(list((root / category / "train" / "good").glob("*.png"))) == 48
        assert len(list((root / category / "test" / "good").glob("*.png"))) == 12
        for defect in DEFECT_TYPES:
            assert len(list((root / category / "test" / defect).glob("*.png"))) == 4
            assert len(list((root / category / "ground_truth" / defect).glob("*_mask.png"))) == 4
        with Image.open(root / category / "train" / "good" / "000.png") as image:
            assert (image.mode, image.size) == ("RGB", (256, 256))
    assert "CC0" in (root / "README.txt").read_text()
    assert "CC0" in (root / "LICENSE.txt").read_text()


def test_masks_are_binary_and_non_empty_exactly_for_defects(textures: tuple[Textures, float]) -> None:
    datamodule, _ = textures
    n_defective = 0
    for batch in datamodule.test_dataloader():
        areas = batch.gt_mask.flatten(1).sum(dim=1)
        assert ((areas > 0) == batch.gt_label.bool()).all()
        n_defective += int(batch.gt_label.sum())
        assert [datamodule.class_names[i] for i in batch.class_index.tolist()] == batch.category
    assert n_defective == len(CATEGORIES) * 4 * len(DEFECT_TYPES)
    mask = np.asarray(Image.open(datamodule.root / "grass" / "ground_truth" / "crack" / "000_mask.png"))
    assert set(np.unique(mask)) == {0, 255}


def test_train_and_test_crops_differ(textures: tuple[Textures, float]) -> None:
    # Train and test crops come from different halves of the photo: no test image equals a train one.
    datamodule, _ = textures
    folder = datamodule.root / "gravel"
    train = {p.read_bytes() for p in (folder / "train" / "good").glob("*.png")}
    test = {p.read_bytes() for p in (folder / "test" / "good").glob("*.png")}
    assert len(train) == 48
    assert not train & test

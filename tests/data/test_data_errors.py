# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Bad input gives errors that name the cause and the fix."""

import shutil
from pathlib import Path
from urllib.error import URLError

import pytest
from anomalib.data.datamodules.image import visa as anomalib_visa

from anomalib_hvq.data import (
    CorruptImageError,
    DatasetNotFoundError,
    EmptyCategoryError,
    MissingMaskError,
    MultiClassFolder,
    MVTec,
    OrphanMaskError,
    UnknownCategoryError,
    Visa,
)
from anomalib_hvq.data import mvtec as mvtec_module
from anomalib_hvq.data.textures.generator import TexturesRootError, ensure_textures


@pytest.fixture
def tree(tiny_mvtec_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny tree that a test may damage."""
    return Path(shutil.copytree(tiny_mvtec_root, tmp_path / "MVTecAD"))


def _setup(root: Path, **kwargs: object) -> MultiClassFolder:
    datamodule = MultiClassFolder(root, num_workers=0, val_split_mode="none", **kwargs)
    datamodule.setup()
    return datamodule


def _offline(*_: object, **__: object) -> None:
    raise URLError("[Errno -2] Name or service not known")


def test_unknown_category_lists_valid_ones(tiny_mvtec_root: Path) -> None:
    with pytest.raises(UnknownCategoryError, match=r"'nope'.*Valid categories: \['bottle', 'carpet', 'grid'\]"):
        _ = MultiClassFolder(tiny_mvtec_root, categories=["bottle", "nope"]).class_names
    # Datasets with fixed names fail at construction, before any download.
    with pytest.raises(UnknownCategoryError, match=r"'bottel'.*'bottle'"):
        MVTec(categories=["bottel"])
    with pytest.raises(UnknownCategoryError, match="'bottle'"):
        Visa(categories=["bottle"])


def test_missing_folder_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=f"'{tmp_path / 'missing'}' does not exist"):
        _ = MultiClassFolder(tmp_path / "missing").class_names
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="No category found"):
        _setup(tmp_path / "empty")


def test_empty_category_names_the_folder(tree: Path) -> None:
    for image in (tree / "carpet" / "train" / "good").iterdir():
        image.unlink()
    with pytest.raises(EmptyCategoryError, match=r"'carpet'.*carpet/train/good"):
        _setup(tree)
    _setup(tree, categories=["bottle", "grid"])  # dropping it, as the message says, works


def test_defect_without_mask_names_the_image(tree: Path) -> None:
    (tree / "grid" / "ground_truth" / "broken" / "000_mask.png").unlink()
    with pytest.raises(MissingMaskError, match=r"grid/test/broken/000\.png"):
        _setup(tree)


def test_mask_without_image_names_the_mask(tree: Path) -> None:
    shutil.copy(tree / "grid/ground_truth/broken/000_mask.png", tree / "grid/ground_truth/broken/999_mask.png")
    with pytest.raises(OrphanMaskError, match=r"999_mask\.png"):
        _setup(tree)


def test_corrupt_image_is_caught_at_setup(tree: Path) -> None:
    (tree / "bottle" / "test" / "good" / "001.png").write_bytes(b"not a png at all")
    with pytest.raises(CorruptImageError, match=r"bottle/test/good/001\.png"):
        _setup(tree)


@pytest.mark.parametrize("split", ["train/good/002.png", "test/good/001.png", "ground_truth/broken/000_mask.png"])
def test_truncated_image_is_caught_at_setup(tree: Path, split: str) -> None:
    path = tree / "carpet" / split
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # valid header, missing pixel data
    with pytest.raises(CorruptImageError, match=rf"carpet/{split}.*truncated.*replace or delete"):
        _setup(tree)


def test_image_damaged_after_setup_is_named_at_read_time(tree: Path) -> None:
    datamodule = _setup(tree)
    path = tree / "carpet" / "train" / "good" / "002.png"
    path.write_bytes(path.read_bytes()[:200])
    index = list(datamodule.train_data.samples.image_path).index(str(path.resolve()))
    with pytest.raises(CorruptImageError, match=r"carpet/train/good/002\.png.*replace or delete"):
        datamodule.train_data[index]


def test_mvtec_offline_says_where_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "MVTecAD"
    archive = root / mvtec_module.mvtecad.DOWNLOAD_INFO.url.split("/")[-1]

    def partial_download(*_: object) -> None:
        root.mkdir(parents=True, exist_ok=True)  # as anomalib's download_and_extract does
        archive.write_bytes(b"partial")
        _offline()

    monkeypatch.setattr(mvtec_module, "download_and_extract", partial_download)
    datamodule = MVTec(root=root, categories=["bottle"])
    with pytest.raises(DatasetNotFoundError) as error:
        datamodule.prepare_data()
    message = str(error.value)
    assert str(root) in message
    assert "https://www.mvtec.com/company/research/datasets/mvtec-ad" in message
    assert "place it at" in message
    assert "URLError" in message
    assert not archive.exists()  # otherwise anomalib would try to extract it next time


def test_visa_offline_says_where_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anomalib_visa, "download_and_extract", _offline)
    with pytest.raises(DatasetNotFoundError, match=rf"VisA was not found at '{tmp_path}'.*place it at"):
        Visa(root=tmp_path, categories=["candle"]).prepare_data()


def test_setup_without_download_points_to_prepare_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"prepare_data\(\)"):
        MVTec(root=tmp_path, categories=["bottle"], num_workers=0).setup()


def test_textures_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(TexturesRootError, match="not generated by Textures"):
        ensure_textures(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"

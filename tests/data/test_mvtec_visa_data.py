# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""MVTec and Visa reuse anomalib's download/preparation and read every category."""

import csv
from pathlib import Path

import numpy as np
import pytest
from anomalib.data.datamodules.image import mvtecad as anomalib_mvtecad
from anomalib.data.datamodules.image import visa as anomalib_visa
from anomalib.data.datasets.image.mvtecad import CATEGORIES as MVTEC_CATEGORIES
from anomalib.data.utils import DownloadInfo
from fake_data import make_mvtec_tree
from PIL import Image

from anomalib_hvq.data import MVTec, Visa
from anomalib_hvq.data import mvtec as mvtec_module


def _no_download(*_: object) -> None:
    pytest.fail("the dataset is on disk; nothing should be downloaded")


def test_mvtec_reads_local_copy_without_download(fake_mvtec15_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mvtec_module, "download_and_extract", _no_download)
    datamodule = MVTec(root=fake_mvtec15_root, num_workers=0, eval_batch_size=64)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.name == "MVTecAD"
    batch = next(iter(datamodule.test_dataloader()))  # 60 test images, one batch
    assert set(batch.category) == set(MVTEC_CATEGORIES)
    assert [datamodule.class_names[i] for i in batch.class_index.tolist()] == batch.category


def test_mvtec_downloads_with_anomalib_info_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_download(root: Path, info: DownloadInfo) -> None:
        calls.append(info)
        make_mvtec_tree(root, ["bottle", "screw"], size=16)

    monkeypatch.setattr(mvtec_module, "download_and_extract", fake_download)
    datamodule = MVTec(root=tmp_path, categories=["screw", "bottle"], num_workers=0)
    datamodule.prepare_data()
    datamodule.prepare_data()  # second call finds the data
    assert calls == [anomalib_mvtecad.DOWNLOAD_INFO]
    datamodule.setup()
    assert set(datamodule.train_data.samples.category) == {"bottle", "screw"}


def _write_raw_visa(root: Path, categories: list[str]) -> None:
    """A miniature extracted VisA archive: raw folders plus the official split CSV."""
    rows = [["object", "split", "label", "image", "mask"]]
    rng = np.random.default_rng(0)
    for category in categories:
        images, masks = root / category / "Data/Images", root / category / "Data/Masks/Anomaly"
        for label, count in (("Normal", 6), ("Anomaly", 2)):
            (images / label).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                name = f"{index:03d}"
                Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(images / label / f"{name}.JPG")
                image_path = f"{category}/Data/Images/{label}/{name}.JPG"
                if label == "Normal":
                    rows.append([category, "train" if index < 4 else "test", "normal", image_path, ""])
                    continue
                masks.mkdir(parents=True, exist_ok=True)
                mask = np.zeros((24, 24), np.uint8)
                mask[4:10, 4:10] = 1  # VisA masks are label maps; anomalib binarises them
                Image.fromarray(mask).save(masks / f"{name}.png")
                rows.append([category, "test", "anomaly", image_path, f"{category}/Data/Masks/Anomaly/{name}.png"])
    (root / "split_csv").mkdir()
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as file:
        csv.writer(file).writerows(rows)


def test_visa_converts_with_anomalib_split_and_reads_all_categories(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anomalib_visa, "download_and_extract", _no_download)
    _write_raw_visa(tmp_path, ["pcb1", "candle"])
    datamodule = Visa(root=tmp_path, categories=["pcb1", "candle"], num_workers=0, eval_batch_size=32)
    datamodule.prepare_data()
    assert (tmp_path / "visa_pytorch" / "candle" / "train" / "good" / "000.JPG").is_file()
    datamodule.setup()
    assert len(datamodule.train_data) + len(datamodule.val_data) == 8
    batch = next(iter(datamodule.test_dataloader()))
    assert sorted(zip(batch.category, batch.class_index.tolist(), strict=True)) == sorted(
        [("candle", 0)] * 4 + [("pcb1", 1)] * 4,
    )
    assert all(
        (mask.sum() > 0) == bool(label) for mask, label in zip(batch.gt_mask, batch.gt_label.tolist(), strict=True)
    )

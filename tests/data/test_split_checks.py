"""Splits that cannot give meaningful numbers fail early with the fix; non-ASCII names are accepted."""

import logging
from pathlib import Path

import pytest
from anomalib.data.utils.path import validate_path
from fake_data import make_mvtec_tree

from anomalib_hvq.data import MultiClassFolder, SplitError


def _datamodule(root: Path, **kwargs: object) -> MultiClassFolder:
    return MultiClassFolder(root, num_workers=0, train_batch_size=2, eval_batch_size=2, seed=0, **kwargs)


def test_one_training_image_per_category_is_refused_before_training(tmp_path: Path) -> None:
    root = make_mvtec_tree(tmp_path / "data", ["nut", "screw"], n_train=1, size=16)
    with pytest.raises(SplitError, match=r"validation set is empty.*nut: 1, screw: 1.*same_as_test"):
        _datamodule(root).setup("fit")
    # Either fix in the message works.
    _datamodule(root, val_split_mode="same_as_test").setup("fit")
    make_mvtec_tree(tmp_path / "data", ["nut", "screw"], n_train=2, size=16)
    datamodule = _datamodule(root)
    datamodule.setup("fit")
    assert sorted(datamodule.val_data.samples.category) == ["nut", "screw"]


def test_no_validation_split_is_refused_when_validation_data_is_asked_for(tiny_mvtec_root: Path) -> None:
    datamodule = _datamodule(tiny_mvtec_root, val_split_mode="none")
    datamodule.setup()  # enough to inspect the data
    with pytest.raises(SplitError, match=r"val_split_mode='none'.*'from_train'"):
        datamodule.val_dataloader()


def test_test_set_of_normal_images_only_is_refused_at_test_time(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = make_mvtec_tree(tmp_path / "data", ["nut", "screw"], n_test_bad=0, size=32)  # Perlin needs 32 px
    datamodule = _datamodule(root)
    with caplog.at_level(logging.WARNING):
        datamodule.setup("fit")
    assert "holds only normal images" in caplog.text
    assert "testing will fail" in caplog.text
    datamodule.train_dataloader()  # training still works
    with pytest.raises(SplitError, match=r"only normal images \(nut: 2, screw: 2\).*image_AUROC = 0\.0.*synthetic"):
        datamodule.test_dataloader()
    assert len(datamodule.predict_dataloader().dataset) == 4  # predicting needs no labels
    synthetic = _datamodule(root, test_split_mode="synthetic")
    synthetic.setup("fit")
    synthetic.test_dataloader()


def test_unicode_root_and_category_are_accepted(tmp_path: Path) -> None:
    root = make_mvtec_tree(tmp_path / "données", ["螺丝", "bottle"], size=16)
    datamodule = _datamodule(root)
    datamodule.setup()
    assert datamodule.class_names == ["bottle", "螺丝"]
    assert "螺丝" in set(datamodule.test_data.samples.category)
    assert datamodule.test_data[0].image.shape == (3, 16, 16)
    # What anomalib's path check guards against is still refused: control and format characters.
    for bad in ("a\x00b", "a\x1b[2Jb", "evil\u202egnp.exe"):
        with pytest.raises(ValueError, match="non-printable"):
            validate_path(tmp_path / bad, should_exist=False)

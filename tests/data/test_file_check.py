"""The setup check finds truncated files of each format and accepts complete ones with trailing data."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomalib_hvq.data import CorruptImageError
from anomalib_hvq.data.file_check import check_image_files


def _image(tmp_path: Path, name: str) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.tif", "a.bmp"])
def test_truncated_file_is_named(tmp_path: Path, name: str) -> None:
    path = _image(tmp_path, name)
    check_image_files([path])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])
    with Image.open(path) as image:
        assert image.size == (40, 48)  # the header alone looks fine
    with pytest.raises(CorruptImageError, match=rf"'{path}'.*truncated|'{path}'.*Truncated"):
        check_image_files([path])


@pytest.mark.parametrize("name", ["a.png", "a.jpg"])
def test_complete_file_with_trailing_data_passes(tmp_path: Path, name: str) -> None:
    path = _image(tmp_path, name)
    path.write_bytes(path.read_bytes() + b"trailer appended by a camera app")
    check_image_files([path])

"""Images of every bit depth read into [0, 1] with their true content, on every path that reads files."""

import importlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from anomalib.data import ImageItem, PredictDataset
from anomalib.data.utils import read_image as anomalib_read_image
from anomalib.visualization.image import visualizer as anomalib_visualizer
from fake_data import make_mvtec_tree
from PIL import Image

from anomalib_hvq.data import CorruptImageError, MultiClassFolder, UnsupportedImageError
from anomalib_hvq.data.anomalib_io import READER_MODULES
from anomalib_hvq.data.image_io import LOW_BITS_WARNING, read_image, read_mask

# A 16-bit ramp over the full range along x; multiples of 257, so also exact in 8 bits (k * 257 / 65535 = k / 255).
RAMP_16 = np.tile(np.array([0, 36, 73, 109, 146, 182, 219, 255], np.uint16) * 257, (6, 1))
RAMP_EXPECTED = torch.from_numpy(RAMP_16.astype(np.float64) / 65535).float()


def _grey16(path: Path) -> Path:
    Image.fromarray(RAMP_16).save(path)
    assert Image.open(path).mode.startswith("I;16")  # what PIL makes of it, hence anomalib's clipping
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_reads_its_values_on_three_channels(tmp_path: Path, suffix: str) -> None:
    path = _grey16(tmp_path / f"grey16{suffix}")
    image = read_image(path, as_tensor=True)
    assert image.shape == (3, 6, 8)
    assert image.dtype == torch.float32
    for channel in image:
        torch.testing.assert_close(channel, RAMP_EXPECTED, rtol=0, atol=1e-7)
    array = read_image(path)
    assert array.shape == (6, 8, 3)
    np.testing.assert_allclose(array[..., 1], RAMP_16 / 65535, atol=1e-7)
    # anomalib's reader: everything above 255/65535 of the range is white.
    assert anomalib_read_image(path, as_tensor=True).mean() > 0.8 > image.mean()


def test_10_bit_data_in_a_16_bit_png_is_scaled_by_the_file_depth_and_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "ten_bit.png"
    Image.fromarray(np.full((4, 4), 1023, np.uint16)).save(path)
    with pytest.warns(UserWarning, match="multiply by 64 or 16") as record:
        image = read_image(path, as_tensor=True)
    assert str(record[0].message) == LOW_BITS_WARNING
    torch.testing.assert_close(image, torch.full((3, 4, 4), 1023 / 65535))


def test_48_bit_rgb_reads_like_8_bit(tmp_path: Path) -> None:
    rgb8 = np.array([[[0, 128, 255], [10, 20, 30]]], np.uint8)
    tifffile.imwrite(tmp_path / "rgb48.tif", rgb8.astype(np.uint16) * 257)  # k * 257: exact in 8 bits
    image = read_image(tmp_path / "rgb48.tif", as_tensor=True)
    torch.testing.assert_close(image, torch.from_numpy(rgb8).permute(2, 0, 1).float() / 255)


def test_float_tiff_in_unit_range_is_kept_and_out_of_range_is_refused(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "unit.tif")
    torch.testing.assert_close(
        read_image(tmp_path / "unit.tif", as_tensor=True), torch.from_numpy(values).expand(3, 2, 2)
    )
    Image.fromarray(values * 1000, mode="F").save(tmp_path / "raw.tif")
    with pytest.raises(UnsupportedImageError, match=r"raw\.tif.*\[0, 1\].*\[0, 1000\]"):
        read_image(tmp_path / "raw.tif")


def test_32_bit_integer_tiff_is_scaled_by_its_bits(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 2**31 - 1]], np.int32), mode="I").save(tmp_path / "i32.tif")
    torch.testing.assert_close(read_image(tmp_path / "i32.tif", as_tensor=True)[0], torch.tensor([[0.0, 0.5]]))


def test_transparency_is_composited_over_black(tmp_path: Path) -> None:
    rgba = np.array([[[200, 100, 50, 128], [10, 20, 30, 255], [250, 250, 250, 0]]], np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    # round(200 * 128 / 255) = 100, round(100 * 128 / 255) = 50, round(50 * 128 / 255) = 25
    expected = torch.tensor([[[100, 50, 25], [10, 20, 30], [0, 0, 0]]]).permute(2, 0, 1) / 255
    torch.testing.assert_close(read_image(tmp_path / "rgba.png", as_tensor=True), expected.float())
    palette = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
    palette.putpalette([255, 0, 0, 0, 255, 0])
    palette.save(tmp_path / "palette.png", transparency=0)  # red is the transparent entry
    expected = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]).permute(2, 0, 1)
    torch.testing.assert_close(read_image(tmp_path / "palette.png", as_tensor=True), expected)


def test_8_bit_files_read_exactly_as_anomalib_reads_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (5, 7), dtype=np.uint8)).save(tmp_path / "grey.jpg")
    for name in ("rgb.png", "grey.jpg"):
        assert torch.equal(read_image(tmp_path / name, as_tensor=True), anomalib_read_image(tmp_path / name, True))
        assert np.array_equal(read_image(tmp_path / name), anomalib_read_image(tmp_path / name))


def test_masks_of_any_depth_and_colour(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 1], [0, 65535]], np.uint16)).save(tmp_path / "mask16.png")
    assert read_mask(tmp_path / "mask16.png", as_tensor=True).tolist() == [[0, 1], [0, 1]]
    # A dark blue mark is anomalous too; anomalib's grey conversion rounds it to 0.
    Image.fromarray(np.array([[[0, 0, 0], [0, 0, 1]]], np.uint8)).save(tmp_path / "blue.png")
    assert read_mask(tmp_path / "blue.png", as_tensor=True).tolist() == [[0, 1]]


def test_corrupt_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CorruptImageError, match=r"broken\.png"):
        read_image(path)


def test_datamodule_reads_16_bit_images(tmp_path: Path) -> None:
    root = make_mvtec_tree(tmp_path / "data", ["parts"], size=8)
    path = _grey16(root / "parts" / "train" / "good" / "100.png")
    datamodule = MultiClassFolder(root, num_workers=0, val_split_mode="none")
    datamodule.setup()
    index = list(datamodule.train_data.samples.image_path).index(str(path.resolve()))
    torch.testing.assert_close(datamodule.train_data[index].image[2], RAMP_EXPECTED)


def test_anomalib_predict_dataset_reads_16_bit_and_names_bad_files(tmp_path: Path) -> None:
    _grey16(tmp_path / "a.png")
    torch.testing.assert_close(PredictDataset(tmp_path / "a.png")[0].image[0], RAMP_EXPECTED)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(tmp_path / "b.png")
    data = (tmp_path / "b.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[: len(data) // 2])  # `anomalib predict` on a folder holding it
    dataset = PredictDataset(tmp_path)
    with pytest.raises(CorruptImageError, match=r"b\.png.*truncated"):
        dataset[[path.name for path in dataset.image_filenames].index("b.png")]


@pytest.mark.parametrize("module", READER_MODULES)
def test_every_anomalib_reader_reads_16_bit(tmp_path: Path, module: str) -> None:
    reader = importlib.import_module(module).read_image
    torch.testing.assert_close(reader(_grey16(tmp_path / "a.png"), as_tensor=True)[1], RAMP_EXPECTED)


def test_visualizer_shows_the_16_bit_image(tmp_path: Path) -> None:
    path = _grey16(tmp_path / "a.png")
    item = ImageItem(image=torch.zeros(3, 6, 8), image_path=str(path))
    shown = anomalib_visualizer.visualize_image_item(
        item, fields=["image"], field_size=(8, 6), text_config={"enable": False}
    )
    assert np.abs(np.asarray(shown.convert("L"), np.float64) - RAMP_16 / 257).max() <= 1

"""Read image and mask files into the model's value range, whatever their bit depth.

anomalib's ``read_image`` converts every file with PIL's ``convert("RGB")``, which clips 16-bit
greyscale samples to 255 (a 16-bit PNG or TIFF loads as an all-white image) and turns 32-bit float
images black. :func:`read_image` is used instead on every path that reads a file (datasets, masks,
``anomalib predict``, synthetic anomalies, the deploy inferencers, the visualizer). Its rules:

- 8-bit files (``L``, ``RGB``, ``P``, ``CMYK``, ``1``, ...) are read exactly as anomalib reads them
  (``value / 255``); 48-bit RGB files, which PIL opens as 8-bit RGB, likewise.
- 16-bit greyscale (PNG, TIFF) is divided by 65535, the file's full range: by the PNG standard,
  data of fewer significant bits (10- or 12-bit sensors) is stored scaled up to 16 bits. Data stored
  in the low bits instead reads nearly black, so a file whose largest value is below 4096 triggers
  a warning that says how to fix it.
- 32-bit integer greyscale is divided by ``2**bits - 1`` (the TIFF's bits per sample); 32-bit float
  greyscale must already lie in ``[0, 1]``, anything else is refused with the range found.
- Greyscale becomes 3 identical channels.
- Transparency (``RGBA``, ``LA``, palette with a transparent colour) is composited over black, so
  the colour hidden under transparent pixels, which viewers never show, cannot change the score; an
  opaque alpha channel is dropped.
- Modes PIL cannot turn into RGB (``LAB``, ``HSV``, ...) are refused, naming the mode.

Every failure raises :class:`~anomalib_hvq.data.errors.CorruptImageError` or
:class:`~anomalib_hvq.data.errors.UnsupportedImageError` naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2.functional import to_dtype, to_image
from torchvision.tv_tensors import Mask

from anomalib_hvq.data.errors import CorruptImageError, UnsupportedImageError

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# Modes whose transparency is composited; "P" counts when the palette has a transparent entry.
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
FULL_16_BIT = 65535
# Below this maximum a 16-bit file most likely holds 12-bit (or fewer) data in its low bits.
LOW_BITS_LIMIT = 4096
TIFF_BITS_PER_SAMPLE = 258
LOW_BITS_WARNING = (
    "A 16-bit image's largest value is below 4096, so it reads almost black (16-bit files are divided "
    "by 65535). If it holds 10- or 12-bit sensor data in the low bits, store it scaled to the full "
    "16-bit range (multiply by 64 or 16) or as 8-bit."
)


def _grey_high_bit_depth(image: Image.Image) -> np.ndarray:
    """``(H, W)`` float32 in ``[0, 1]`` from a 16-bit, 32-bit integer or float greyscale image."""
    raw = np.asarray(image)
    if image.mode == "F":
        low, high = (float(raw.min()), float(raw.max())) if raw.size else (0.0, 0.0)
        if not (np.isfinite(raw).all() and low >= 0 and high <= 1):
            msg = (
                f"a 32-bit float image must hold values in [0, 1], this one holds [{low:g}, {high:g}] "
                "(non-finite values included). Scale it to [0, 1] or save it as an 8- or 16-bit image"
            )
            raise UnsupportedImageError(msg)
        return raw.astype(np.float32, copy=False)
    if image.mode in SIXTEEN_BIT_MODES:
        full = FULL_16_BIT
        if 0 < raw.max() < LOW_BITS_LIMIT:
            warnings.warn(LOW_BITS_WARNING, UserWarning, stacklevel=2)
    else:  # "I": 32-bit signed; TIFFs say how many bits the data use, PNGs (older PIL) are 16-bit
        bits = getattr(image, "tag_v2", {}).get(TIFF_BITS_PER_SAMPLE, 16)
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        full = 2**bits - 1
        if raw.min() < 0 or raw.max() > full:
            msg = f"a {bits}-bit integer image must hold values in [0, {full}], not [{raw.min()}, {raw.max()}]"
            raise UnsupportedImageError(msg)
    return (raw.astype(np.float64) / full).astype(np.float32)


def _composite_over_black(image: Image.Image) -> Image.Image:
    """RGB image: colours weighted by alpha (rounded), or just the colours if fully opaque."""
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:  # fully opaque: the alpha channel carries nothing
        return rgba.convert("RGB")
    array = np.asarray(rgba)
    rgb = (array[..., :3].astype(np.uint16) * array[..., 3:] + 127) // 255
    return Image.fromarray(rgb.astype(np.uint8), mode="RGB")


def _image_to_rgb(image: Image.Image) -> Image.Image | np.ndarray:
    """Turn a PIL image into RGB: an 8-bit RGB image for 8-bit sources, else ``(H, W, 3)`` float32 in ``[0, 1]``.

    Raises:
        UnsupportedImageError: The mode has no RGB meaning or the values lie outside its range
            (:func:`read_image` adds the file's name).

    """
    if image.mode in SIXTEEN_BIT_MODES or image.mode in {"I", "F"}:
        grey = _grey_high_bit_depth(image)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        return _composite_over_black(image)
    try:
        return image.convert("RGB")
    except ValueError as error:  # PIL: "conversion from LAB to RGB not supported"
        msg = f"PIL cannot convert mode '{image.mode}' to RGB ({error}). Save the image as RGB or greyscale"
        raise UnsupportedImageError(msg) from error


def _rgb_to_tensor(rgb: Image.Image | np.ndarray) -> torch.Tensor:
    """``(3, H, W)`` float32 in ``[0, 1]`` from :func:`_image_to_rgb`'s output (8-bit as anomalib scales it)."""
    if isinstance(rgb, Image.Image):
        return to_dtype(to_image(rgb), torch.float32, scale=True)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def _decode(path: str | Path, mask: bool) -> Image.Image | np.ndarray:
    """Open, decode and convert one file; every failure names ``path``."""
    try:
        with Image.open(path) as image:
            return _mask_array(image) if mask else _image_to_rgb(image)
    except UnsupportedImageError as error:
        raise UnsupportedImageError(error.reason, path) from error
    except (OSError, SyntaxError, ValueError) as error:  # PIL raises all three on bad files
        raise CorruptImageError(path, error) from error


def read_image(image: str | Path | Image.Image, as_tensor: bool = False) -> torch.Tensor | np.ndarray:
    """Read an image file, or convert an opened PIL image, to RGB in ``[0, 1]``.

    A drop-in for anomalib's ``read_image`` (which takes paths only) that reads any bit depth.

    Args:
        image: Image file, or a PIL image (e.g. given to an inferencer).
        as_tensor: Return a ``(3, H, W)`` float32 tensor; else an ``(H, W, 3)`` float64 array, as
            anomalib's function does.

    Raises:
        CorruptImageError: The file cannot be decoded (names the file).
        UnsupportedImageError: The image decodes but has no RGB reading (names the file and why).

    """
    rgb = _image_to_rgb(image) if isinstance(image, Image.Image) else _decode(image, mask=False)
    if as_tensor:
        return _rgb_to_tensor(rgb)
    return np.array(rgb) / 255.0 if isinstance(rgb, Image.Image) else rgb.astype(np.float64)


def _mask_array(image: Image.Image) -> np.ndarray:
    """``(H, W)`` bool: a pixel is anomalous where any colour channel is non-zero (alpha ignored)."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode in {"I", "F"}:
        return np.asarray(image) > 0
    rgb = np.asarray(image.convert("RGBA" if image.mode in ALPHA_MODES else "RGB"))[..., :3]
    return rgb.any(axis=-1)


def read_mask(path: str | Path, as_tensor: bool = False) -> torch.Tensor | np.ndarray:
    """Read a ground-truth mask of any bit depth (drop-in for anomalib's ``read_mask``).

    Returns:
        ``(H, W)`` uint8 :class:`~torchvision.tv_tensors.Mask` of 0/1 if ``as_tensor``, else an
        ``(H, W)`` uint8 array of 0/255 (anomalib's returns the grey values, which its callers
        threshold at 0).

    """
    mask = _decode(path, mask=True)
    if as_tensor:
        return Mask(torch.from_numpy(mask), dtype=torch.uint8)
    return mask.astype(np.uint8) * 255

"""Check at setup that every image file is complete, without decoding its pixels.

A truncated file (an interrupted copy or download) keeps a valid header, so opening it succeeds
and the error used to come only when a batch first read it: for a test image, after training.
:func:`check_image_files` reads each header and one cheap completeness sign per format:

- PNG: the file ends with the ``IEND`` chunk; if not (data after it), PIL's ``verify`` walks the
  chunks and their CRCs without decompressing.
- JPEG: the file ends with the end-of-image marker ``FFD9``; if not (a trailer after it, e.g. a
  phone's motion-photo video), a decode at 1/8 scale.
- TIFF: every strip or tile lies inside the file.
- Anything else (BMP, WebP, GIF, ...): a full decode.

Damage that keeps the file's length (bytes overwritten in place) is not caught here; reading such
a file still raises :class:`~anomalib_hvq.data.errors.CorruptImageError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from anomalib_hvq.data.errors import CorruptImageError

PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
# TIFF tags: where each strip/tile starts and how many bytes it holds.
TIFF_EXTENTS = ((273, 279), (324, 325))


def _tail(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        file.seek(max(path.stat().st_size - size, 0))
        return file.read()


def _png_complete(image: Image.Image, path: Path) -> None:
    if _tail(path, len(PNG_END)) != PNG_END:
        image.verify()


def _jpeg_complete(image: Image.Image, path: Path) -> None:
    if _tail(path, len(JPEG_END)) != JPEG_END:
        image.draft(image.mode, (max(image.width // 8, 1), max(image.height // 8, 1)))
        image.load()


def _tiff_complete(image: Image.Image, path: Path) -> None:
    tags = image.tag_v2
    for offsets_tag, counts_tag in TIFF_EXTENTS:
        if offsets_tag in tags and counts_tag in tags:
            offsets, counts = tags[offsets_tag], tags[counts_tag]
            offsets = offsets if isinstance(offsets, tuple) else (offsets,)
            counts = counts if isinstance(counts, tuple) else (counts,)
            end = max(offset + count for offset, count in zip(offsets, counts, strict=False))
            if end > path.stat().st_size:
                msg = f"image file is truncated: its data runs to byte {end}, the file has {path.stat().st_size}"
                raise OSError(msg)
            return
    image.load()


def _decodes(image: Image.Image, _path: Path) -> None:
    image.load()


COMPLETENESS: dict[str, Callable[[Image.Image, Path], None]] = {
    "PNG": _png_complete,
    "JPEG": _jpeg_complete,
    "MPO": _jpeg_complete,
    "TIFF": _tiff_complete,
}


def check_image_files(paths: Sequence[Path | str]) -> None:
    """Open each file's header and check the file is complete (see the module docstring).

    Raises:
        CorruptImageError: Naming the first file that is not a complete image.

    """
    for path in map(Path, paths):
        try:
            with Image.open(path) as image:
                COMPLETENESS.get(image.format or "", _decodes)(image, path)
        except (OSError, SyntaxError, ValueError) as error:  # PIL raises all three on bad files
            raise CorruptImageError(path, error) from error

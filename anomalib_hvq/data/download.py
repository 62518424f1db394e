# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Turn a failed dataset download into an error that says where to put the data by hand."""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from anomalib.data.utils import DownloadInfo

from anomalib_hvq.data.errors import DatasetNotFoundError

# Raised by urllib (URLError is an OSError), by anomalib's hash check (RuntimeError) and by the
# archive extraction of a partial file.
DOWNLOAD_ERRORS = (OSError, RuntimeError, ValueError, tarfile.TarError, zipfile.BadZipFile, EOFError)


def download_or_explain(
    download: Callable[[], None],
    root: Path,
    info: DownloadInfo,
    dataset: str,
    page: str,
    layout: str,
) -> None:
    """Run ``download``; on failure remove a partial archive and raise :class:`DatasetNotFoundError`.

    Args:
        download: Callable running anomalib's download (and preparation) logic.
        root: Dataset root the archive is downloaded into.
        info: anomalib's download info (used to find the archive file name).
        dataset: Dataset name for the message.
        page: Web page where users can get the data by hand.
        layout: What must be placed at ``root``, for the message.

    """
    archive = root / (info.filename or info.url.split("/")[-1])
    had_archive = archive.exists()
    try:
        download()
    except DOWNLOAD_ERRORS as error:
        if not had_archive:
            # anomalib would reuse a partial archive on the next run instead of downloading again.
            archive.unlink(missing_ok=True)
        raise DatasetNotFoundError.for_download(dataset, root, page, layout, error) from error

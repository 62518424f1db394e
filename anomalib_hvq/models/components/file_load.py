# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Reading weight files and checkpoints with errors that say what the file is not, and whether it is damaged.

``torch.load`` answers a file that is not a weight file with an ``UnpicklingError`` advising
``weights_only=False`` (which would run whatever code the file holds), or with a bare ``KeyError``; and it
loads a checkpoint whose bytes were damaged in transit without noticing. :func:`check_archive` verifies the
CRC of every entry of a zip-format file (what ``torch.save`` and Lightning write), and :func:`torch_load`
turns the unpickling errors into one that names the file and what was expected.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

_VERIFIED: set[tuple[str, int, int]] = set()
MAX_REASON = 200


class DamagedFileError(ValueError):
    """A weight file or checkpoint that cannot be used as it is: damaged, or not that kind of file."""


def check_archive(path: str | Path) -> None:
    """Raise :class:`DamagedFileError` if the zip-format file ``path`` has an entry whose CRC does not match.

    Reads the whole file once (about as long as loading it). Files in torch's legacy (non-zip) format are
    left to :func:`torch_load`.
    """
    path = Path(path)
    stat = path.stat()
    # A file is read whole once per process while unchanged (export and test may load the same checkpoint twice).
    stamp = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if stamp in _VERIFIED or not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        damaged = f"its zip structure: {error}"
    if damaged is not None:
        msg = f"The file {path} is damaged (CRC mismatch in {damaged}): re-copy it, or re-train."
        raise DamagedFileError(msg)
    _VERIFIED.add(stamp)


def torch_load(path: str | Path, expected: str, **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True, **kwargs)``, refusing a file that is not ``expected`` by name.

    Args:
        path: The file.
        expected: What the file should be, for the message (e.g. "a backbone weight file (a state dict)").
        **kwargs: Further ``torch.load`` arguments (``map_location``, ``mmap``).

    """
    check_archive(path)
    try:
        return torch.load(path, weights_only=True, **kwargs)
    except (pickle.UnpicklingError, KeyError, EOFError, RuntimeError, ValueError, AttributeError) as error:
        text = str(error)
        # torch's own reason follows "WeightsUnpickler error:"; its advice to load unsafely is not passed on.
        after = text.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in text else text
        reason = next((line.strip() for line in after.splitlines() if line.strip()), type(error).__name__)
        found = re.search(r"GLOBAL (\S+)", reason)
        if found:
            detail = f"it holds Python objects that are not tensors ({found.group(1)})"
        elif "weights_only" in reason or len(reason) > MAX_REASON:
            detail = f"torch cannot read it ({type(error).__name__})"
        else:
            detail = f"torch cannot read it ({reason})"
        msg = (
            f"{path} is not {expected}: {detail}. Pass the right file; files from this project, timm or Lightning "
            "load as they are."
        )
        raise DamagedFileError(msg) from None

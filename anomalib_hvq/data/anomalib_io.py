"""Make anomalib's own file-reading code use the project's image reader and accept non-ASCII paths.

anomalib reads image files itself where the project does not own the code: ``anomalib predict`` on
an image or folder (its ``PredictDataset``), synthetic anomalies (``make_synthetic_dataset``), its
datasets and inferencers given a path, and the visualizer that saves overlay images. All of them go
through PIL's ``convert("RGB")``, which turns 16-bit greyscale white (see
:mod:`anomalib_hvq.data.image_io`). :func:`use_project_image_io` points them at
:func:`~anomalib_hvq.data.image_io.read_image`, at run time, without touching anomalib's files.

It also relaxes anomalib's path check, which rejects every path with a character outside printable
ASCII ("Path contains non-printable characters": a category ``螺丝`` or a root ``données``). Python's
``str.isprintable`` accepts letters of every script and still rejects what the check guards
against: control characters (NUL, terminal escapes) and invisible format characters such as the
right-to-left override.

Importing ``anomalib_hvq`` installs both; calling the function again is harmless.
"""

from __future__ import annotations

import copy
import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anomalib_hvq.data.image_io import read_image

# Modules that call anomalib's `read_image` through a name imported into their namespace.
READER_MODULES = (
    "anomalib.data.predict",
    "anomalib.data.utils.synthetic",
    "anomalib.data.datasets.base.image",
    "anomalib.deploy.inferencers.torch_inferencer",
    "anomalib.deploy.inferencers.openvino_inferencer",
    "anomalib.utils.visualization.image",
)
VISUALIZER_MODULE = "anomalib.visualization.image.visualizer"


def has_unprintable_characters(path: str | Path) -> bool:
    """Tell whether ``path`` is empty or holds a control, format or other non-printable character."""
    text = str(path)
    return not text or not text.isprintable()


def _reads_with_project_reader(visualize: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap anomalib's ``visualize_image_item``, which re-opens ``item.image_path`` with PIL ``convert``."""

    @functools.wraps(visualize)
    def visualize_image_item(item: Any, *args: Any, **kwargs: Any) -> Any:
        path = getattr(item, "image_path", None)
        if path is None:
            return visualize(item, *args, **kwargs)
        # The copy shows the file as read for the model; anomalib prefers the path over `image`.
        item = copy.copy(item)
        item.image = read_image(path, as_tensor=True)
        item.image_path = None
        return visualize(item, *args, **kwargs)

    visualize_image_item.reads_with_project_reader = True
    return visualize_image_item


def use_project_image_io() -> None:
    """Point anomalib's image reading at the project's reader and accept non-ASCII paths (idempotent)."""
    for name in READER_MODULES:
        importlib.import_module(name).read_image = read_image
    importlib.import_module("anomalib.data.utils.path").contains_non_printable_characters = has_unprintable_characters
    visualizer = importlib.import_module(VISUALIZER_MODULE)
    if not getattr(visualizer.visualize_image_item, "reads_with_project_reader", False):
        visualizer.visualize_image_item = _reads_with_project_reader(visualizer.visualize_image_item)

"""The failure cases a user wants to see first, drawn as anomaly-map overlays.

Per category: the normal images the model scored highest (the false alarms an image threshold meets
first) and the defective images it scored lowest (the misses). Each is drawn as the image with the
anomaly map blended over it and the ground-truth defect outlined, encoded as a JPEG ``data:`` URI so
that one HTML file holds the whole report (JPEG: a seventh of PNG's size for these photos, 14 KB per
224 px overlay on the demo data).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Anchors of a blue-cyan-yellow-red ramp (low to high anomaly score), interpolated linearly.
_RAMP = np.array([[0, 0, 128], [0, 96, 255], [0, 220, 220], [255, 230, 0], [255, 64, 0], [160, 0, 0]], np.float32)
MAP_ALPHA = 0.5  # share of the map's colour in the blend
OUTLINE = (0, 255, 0)  # ground-truth defect outline
MAX_SIDE = 256  # overlays are thumbnails: a report of 15 categories stays a few MB


@dataclass(frozen=True)
class Case:
    """One test image picked for the report."""

    index: int  # position in the category's test outputs
    score: float  # raw image score
    rank: int  # 1 = the category's highest score
    defective: bool


def failure_cases(scores: torch.Tensor, labels: torch.Tensor, count: int) -> tuple[list[Case], list[Case]]:
    """Pick the ``count`` highest-scoring normal and the ``count`` lowest-scoring defective images.

    Args:
        scores: Image scores ``(N,)``, higher = more anomalous.
        labels: Image labels ``(N,)``, 1 / True = defective.
        count: Images per list.

    Returns:
        ``(normal images, highest score first; defective images, lowest score first)``.

    """
    scores, labels = scores.flatten().double(), labels.flatten().bool()
    order = torch.argsort(scores, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, len(order) + 1)

    def cases(mask: torch.Tensor, descending: bool) -> list[Case]:
        indices = torch.nonzero(mask).flatten()
        picked = indices[torch.argsort(scores[indices], descending=descending, stable=True)][:count]
        return [Case(int(i), float(scores[i]), int(rank[i]), bool(labels[i])) for i in picked]

    return cases(~labels, descending=True), cases(labels, descending=False)


def _colour(values: np.ndarray) -> np.ndarray:
    """Map ``[0, 1]`` values ``(H, W)`` to RGB ``(H, W, 3)`` float32 on the ramp."""
    position = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    low = np.minimum(position.astype(np.int64), len(_RAMP) - 2)
    weight = (position - low)[..., None]
    return _RAMP[low] * (1 - weight) + _RAMP[low + 1] * weight


def _outline(mask: np.ndarray) -> np.ndarray:
    """Border pixels of a bool mask ``(H, W)``: inside the mask with a 4-neighbour outside it."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def overlay(
    anomaly_map: torch.Tensor,
    value_range: tuple[float, float],
    image_path: str | Path | None = None,
    mask: torch.Tensor | None = None,
) -> Image.Image:
    """Draw the image with the anomaly map blended over it and the defect outlined.

    Args:
        anomaly_map: Raw map ``(H, W)``.
        value_range: Map values drawn as the ramp's ends (e.g. the category's map range, so that the
            colours compare across one category's images).
        image_path: The test image, resized to the map; ``None`` draws the map over grey.
        mask: Ground-truth mask ``(H, W)``, outlined in green; ``None`` for none.

    Returns:
        An RGB image of the map's size, shrunk to at most :data:`MAX_SIDE` pixels a side.

    """
    height, width = anomaly_map.shape[-2:]
    low, high = value_range
    values = (anomaly_map.detach().cpu().double().numpy() - low) / max(high - low, 1e-12)
    if image_path is None:
        base = np.full((height, width, 3), 128, np.float32)
    else:
        with Image.open(image_path) as image:
            base = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), np.float32)
    blended = (1 - MAP_ALPHA) * base + MAP_ALPHA * _colour(values)
    if mask is not None:
        blended[_outline(mask.detach().cpu().numpy().astype(bool))] = OUTLINE
    picture = Image.fromarray(blended.round().clip(0, 255).astype(np.uint8))
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    return picture


def jpeg_data_uri(picture: Image.Image, quality: int = 85) -> str:
    """Encode an image as ``data:image/jpeg;base64,...``, to embed it in HTML."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

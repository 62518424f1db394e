"""One static HTML page per test run: the table, the ROC curves, the learning curve and the failure cases.

``report.html`` is self-contained (charts as inline SVG, images as embedded JPEGs, no script), so it
opens from the run's folder in any browser, without a server, and can be mailed or archived as is.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pandas as pd
import torch

from anomalib_hvq.metrics.failure_cases import Case, failure_cases, jpeg_data_uri, overlay
from anomalib_hvq.metrics.functional import MEAN_ROW, roc_curve
from anomalib_hvq.metrics.report import format_percent
from anomalib_hvq.metrics.svg_chart import line_chart

REPORT_FILE = "report.html"
LEARNING_CURVE_FILE = "learning_curve.csv"  # written by benchmarks/learning_curve.py
# Learning-curve columns drawn, in this order (a column is drawn if its name contains one of these): the
# test metrics, then the losses and reconstruction errors, then codebook health. Bookkeeping (step,
# times, learning rate) is left out.
CURVE_ORDER = ("image_AUROC", "pixel_AUROC", "AUPRO", "loss", "mse", "dead_fraction", "perplexity")

_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.mean { font-weight: bold; background: #f3f3f3; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.cases { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
figure { margin: 0; width: 200px; font-size: 12px; }
figure img { width: 192px; height: 192px; object-fit: contain; image-rendering: auto; border: 1px solid #ccc; }
.note { color: #555; font-size: 13px; }
"""


@dataclass
class CategoryOutputs:
    """One category's test outputs, as the per-category callback collected them."""

    scores: torch.Tensor  # (N,) raw image scores
    labels: torch.Tensor | None = None  # (N,) bool, True = defective
    maps: torch.Tensor | None = None  # (N, H, W) raw anomaly maps
    masks: torch.Tensor | None = None  # (N, H, W) bool ground truth
    image_paths: Sequence[str | None] = field(default_factory=list)  # (N,) or empty when unknown


def _table(table: pd.DataFrame, notes: Sequence[str]) -> str:
    header = "".join(f"<th>{escape(str(name))}</th>" for name in ["category", *table.columns])
    rows = [
        f'<tr class="{"mean" if name == MEAN_ROW else "category"}"><td>{escape(str(name))}</td>'
        + "".join(f"<td>{format_percent(float(value))}</td>" for value in row.tolist())
        + "</tr>"
        for name, row in table.iterrows()
    ]
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f'<table id="metrics"><tr>{header}</tr>{"".join(rows)}</table><ul class="note">{items}</ul>'


def _roc_section(outputs: Mapping[str, CategoryOutputs], table: pd.DataFrame) -> str:
    series = {}
    for name, category in outputs.items():
        curve = None if category.labels is None else roc_curve(category.scores, category.labels)
        if curve is not None:
            auroc = format_percent(float(table.loc[name, "image_AUROC"])) if "image_AUROC" in table else ""
            series[f"{name} ({auroc})"] = (curve[0].tolist(), curve[1].tolist())
    if not series:
        return '<p class="note">No category has both normal and defective test images: no ROC curve.</p>'
    chart = line_chart(
        series, "Image-level ROC (image AUROC in %)", "false-positive rate", "true-positive rate", (0, 1), (0, 1), True
    )
    return f'<div class="charts">{chart}</div>'


def _curve_priority(column: str) -> int:
    """Position of the first :data:`CURVE_ORDER` word in ``column`` (``len(CURVE_ORDER)``: not drawn)."""
    return next((i for i, word in enumerate(CURVE_ORDER) if word in column), len(CURVE_ORDER))


def _learning_curve_section(path: Path | None) -> str:
    if path is None or not path.is_file():
        return (
            f'<p class="note">No learning curve: put a {LEARNING_CURVE_FILE} (from benchmarks/learning_curve.py) '
            "into the run folder or pass its path to PerCategoryMetrics(learning_curve=...).</p>"
        )
    curve = pd.read_csv(path)
    if "epoch" not in curve.columns:
        return f'<p class="note">{escape(str(path))} has no "epoch" column; not drawn.</p>'
    groups = dict(iter(curve.groupby("model", sort=False))) if "model" in curve.columns else {"run": curve}
    numeric = [str(c) for c in curve.select_dtypes("number").columns if c != "epoch" and curve[c].notna().any()]
    columns = sorted((c for c in numeric if _curve_priority(c) < len(CURVE_ORDER)), key=_curve_priority)
    if not columns:
        return f'<p class="note">{escape(str(path))} has none of the columns drawn ({", ".join(CURVE_ORDER)}).</p>'
    charts = [
        line_chart(
            {str(model): (rows["epoch"].tolist(), rows[column].tolist()) for model, rows in groups.items()},
            column,
            "epoch",
            column,
        )
        for column in columns
    ]
    return f'<p class="note">From {escape(str(path))}.</p><div class="charts">{"".join(charts)}</div>'


def _figure(category: CategoryOutputs, maps: torch.Tensor, case: Case, value_range: tuple[float, float]) -> str:
    path = category.image_paths[case.index] if category.image_paths else None
    mask = None if category.masks is None else category.masks[case.index]
    uri = jpeg_data_uri(overlay(maps[case.index], value_range, path, mask))
    name = f"{Path(path).parent.name}/{Path(path).name}" if path else f"test image {case.index}"
    caption = f"{escape(name)}<br>score {case.score:.4g}, rank {case.rank} of {len(category.scores)}"
    return f'<figure><img src="{uri}" alt="{escape(name)}"><figcaption>{caption}</figcaption></figure>'


def _cases_section(outputs: Mapping[str, CategoryOutputs], count: int) -> str:
    if count <= 0:
        return ""
    parts = [
        f'<p class="note">Per category, the normal images with the highest scores (false alarms first) and the '
        f"defective images with the lowest scores (misses first), up to {count} each. The anomaly map is blended "
        "over the image from blue (the category's lowest map value) to red (its highest); green outlines the "
        "ground-truth defect. Rank 1 = the category's highest score.</p>"
    ]
    for name, category in outputs.items():
        maps, labels = category.maps, category.labels
        parts.append(f"<h3>{escape(name)}</h3>")
        if maps is None or labels is None:
            parts.append('<p class="note">No anomaly maps or labels in the outputs.</p>')
            continue
        normal, defective = failure_cases(category.scores, labels, count)
        value_range = (float(maps.min()), float(maps.max()))
        for title, cases in (("Normal images scored highest", normal), ("Defective images scored lowest", defective)):
            figures = "".join(_figure(category, maps, case, value_range) for case in cases) or "<p>none</p>"
            parts.append(f'<h4>{title}</h4><div class="cases">{figures}</div>')
    return "".join(parts)


def write_html_report(
    output_dir: str | Path,
    table: pd.DataFrame,
    outputs: Mapping[str, CategoryOutputs],
    notes: Sequence[str] = (),
    cases: int = 4,
    learning_curve: str | Path | None = None,
    title: str = "Test report",
) -> Path:
    """Write ``report.html`` into ``output_dir`` and return its path.

    Args:
        output_dir: The run's folder; created if missing.
        table: Categories (plus ``mean``) x metrics in ``[0, 1]``, as ``metrics_table`` returns it.
        outputs: Category name -> its test outputs (scores, labels, maps, masks, image paths).
        notes: Lines shown under the table.
        cases: Failure cases shown per list and category (0: none).
        learning_curve: A learning-curve CSV (``epoch`` column, optional ``model`` column, one column per
            quantity); ``None`` uses ``learning_curve.csv`` in ``output_dir`` if there is one.
        title: Page title.

    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    curve_path = Path(learning_curve) if learning_curve is not None else output_dir / LEARNING_CURVE_FILE
    written = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">Written {written} into {escape(str(output_dir.resolve()))}.</p>',
        "<h2>Per-category metrics (%)</h2>",
        _table(table, notes),
        "<h2>ROC curves</h2>",
        _roc_section(outputs, table),
        "<h2>Learning curve</h2>",
        _learning_curve_section(curve_path),
        "<h2>Failure cases</h2>",
        _cases_section(outputs, cases),
    ]
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path = output_dir / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path

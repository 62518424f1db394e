# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Render and save a per-category metrics table (Markdown for people, CSV for programs)."""

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from anomalib_hvq.metrics.functional import MEAN_ROW

REPORT_STEM = "per_category_metrics"


def format_percent(value: float) -> str:
    """Format a fraction as a percentage with one decimal, or ``n/a`` when undefined."""
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def undefined_note(table: pd.DataFrame) -> str | None:
    """Footnote naming the categories whose metrics are undefined (``NaN``), if any.

    Args:
        table: Output of :func:`~anomalib_hvq.metrics.functional.metrics_table`.

    Returns:
        The footnote, or ``None`` if every metric is defined for every category.

    """
    categories = table.drop(index=MEAN_ROW, errors="ignore")
    # Group the metrics by the categories they are undefined for; typically a category without
    # anomalies loses all metrics at once, which then reads "all metrics: <category>".
    groups: dict[tuple[str, ...], list[str]] = {}
    for metric in categories.columns:
        undefined = tuple(map(str, categories.index[categories[metric].isna()]))
        if undefined:
            groups.setdefault(undefined, []).append(str(metric))
    parts = [
        f"{'all metrics' if len(metrics) == len(table.columns) else ', '.join(metrics)}: {', '.join(names)}"
        for names, metrics in groups.items()
    ]
    if not parts:
        return None
    return (
        "n/a = undefined: the category's test set lacks anomalous (or normal) images or pixels, or "
        "its batches carried no labels/masks/maps; the mean row averages only the categories where "
        "the metric is defined. " + "; ".join(parts) + "."
    )


def format_markdown(table: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """Render the table as Markdown, values in percent with one decimal.

    Args:
        table: Categories (plus ``mean``) x metrics, values in ``[0, 1]`` or ``NaN``.
        notes: Footnote lines appended below the table.

    Returns:
        The Markdown text, ending with a newline.

    """
    header = ["category", *map(str, table.columns)]
    body = [
        [f"**{name}**" if name == MEAN_ROW else str(name), *map(format_percent, row.tolist())]
        for name, row in table.iterrows()
    ]
    # Pad every column to its widest cell so that the table also reads well as plain console text;
    # the category column is left-aligned, the numbers right-aligned.
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    rule = [":" + "-" * (widths[0] - 1), *("-" * (width - 1) + ":" for width in widths[1:])]
    padded = [
        [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        for row in (header, *body)
    ]
    lines = ["| " + " | ".join(row) + " |" for row in (padded[0], rule, *padded[1:])]
    lines.extend(["", *(f"- {note}" for note in notes)] if notes else [])
    return "\n".join(lines) + "\n"


def write_report(table: pd.DataFrame, markdown: str, output_dir: str | Path) -> tuple[Path, Path]:
    """Write ``per_category_metrics.md`` and ``per_category_metrics.csv`` into ``output_dir``.

    The CSV keeps full precision fractions in ``[0, 1]`` (empty cell = undefined), as logged.

    Args:
        table: Categories (plus ``mean``) x metrics.
        markdown: The rendered Markdown table.
        output_dir: Directory to write into; created if missing.

    Returns:
        Paths of the Markdown and CSV files.

    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    md_path = output_dir / f"{REPORT_STEM}.md"
    csv_path = output_dir / f"{REPORT_STEM}.csv"
    md_path.write_text(markdown, encoding="utf-8")
    table.to_csv(csv_path, index_label="category")
    return md_path, csv_path

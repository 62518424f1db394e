"""Line charts as inline SVG, for a report that needs no plotting library, server or script to display."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

# Colour-blind-safe qualitative palette (Okabe-Ito), cycled for more series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WIDTH, HEIGHT = 540, 300
# The legend sits right of the plot, where it can hide no line.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 150, 28, 44
LEGEND_CHARS = 22  # longer names are cut with an ellipsis (the full name stays in data-name)

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _span(values: list[float]) -> tuple[float, float]:
    """Finite ``(low, high)`` of ``values``, widened when they are all equal (or absent)."""
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high == low:
        pad = abs(low) * 0.05 or 0.5
        return low - pad, high + pad
    return low, high


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values between ``low`` and ``high``."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def _text(x: float, y: float, content: str, anchor: str, extra: str = "") -> str:
    """Write an SVG ``<text>`` element with escaped ``content``."""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(content)}</text>'


def line_chart(
    series: Series,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
) -> str:
    """One ``<svg>`` element drawing each named ``(x, y)`` series as a line, with axes, ticks and a legend.

    Args:
        series: Legend name -> ``(x values, y values)`` of equal length; non-finite points are dropped.
        title: Text above the plot.
        x_label: Name of the x axis.
        y_label: Name of the y axis.
        x_range: Fixed ``(low, high)`` of the x axis; ``None`` fits the data.
        y_range: Fixed ``(low, high)`` of the y axis; ``None`` fits the data.
        diagonal: Draw the dashed ``y = x`` line (the chance line of a ROC curve).

    Returns:
        The SVG markup (UTF-8 text, no XML declaration) to place inside an HTML page.

    """
    points = {
        name: [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
        for name, (xs, ys) in series.items()
    }
    x_low, x_high = x_range or _span([x for line in points.values() for x, _ in line])
    y_low, y_high = y_range or _span([y for line in points.values() for _, y in line])
    plot_w, plot_h = WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def px(x: float) -> float:
        return MARGIN_LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return MARGIN_TOP + (y_high - y) / (y_high - y_low) * plot_h

    left, right, top, bottom = MARGIN_LEFT, MARGIN_LEFT + plot_w, MARGIN_TOP, MARGIN_TOP + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
        'font-size="11">',
        _text(left + plot_w / 2, 16, title, "middle", 'font-size="13"'),
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>',
    ]
    for tick in _ticks(x_low, x_high):
        parts.append(_text(px(tick), bottom + 14, _label(tick), "middle"))
    for tick in _ticks(y_low, y_high):
        parts.append(f'<line x1="{left}" x2="{right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#eee"/>')
        parts.append(_text(left - 4, py(tick) + 4, _label(tick), "end"))
    parts.append(_text(left + plot_w / 2, HEIGHT - 6, x_label, "middle"))
    parts.append(_text(0, 0, y_label, "middle", f'transform="translate(12 {top + plot_h / 2}) rotate(-90)"'))
    if diagonal:
        parts.append(
            f'<line x1="{px(x_low):.1f}" y1="{py(y_low):.1f}" x2="{px(x_high):.1f}" y2="{py(y_high):.1f}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for index, (name, line) in enumerate(points.items()):
        colour = PALETTE[index % len(PALETTE)]
        coordinates = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line)
        if len(line) == 1:  # a single point has no line to draw
            parts.append(f'<circle cx="{px(line[0][0]):.1f}" cy="{py(line[0][1]):.1f}" r="3" fill="{colour}"/>')
        elif line:
            parts.append(f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        legend_y = top + 8 + 14 * index
        shown = name if len(name) <= LEGEND_CHARS else name[: LEGEND_CHARS - 1] + "\u2026"
        parts.append(f'<rect x="{right + 10}" y="{legend_y - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(right + 24, legend_y + 1, shown, "start", f'data-name="{escape(name)}"'))
    parts.append("</svg>")
    return "\n".join(parts)

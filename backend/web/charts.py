"""Inline SVG line charts for the dashboard: no script, no fetched asset, readable in grey print.

``line_chart`` draws axes with round ticks, a legend, and per series a line and a ``circle.point`` per version;
the formatting helpers escape every value that reaches the page.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape
from typing import Any, Sequence

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 78
# Okabe-Ito colours plus dash patterns: the series stay apart for colour-blind readers and in grey print.
STYLES = (("#0072B2", ""), ("#D55E00", "6 3"), ("#009E73", "2 3"))

Point = tuple[float, float, str]  # (labels, value, version)


def escape_html(value: Any) -> str:
    """Any value as text safe inside an element or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def finite(value: Any) -> float | None:
    """A finite float, or None: a missing or NaN metric is skipped, never drawn as 0 or as cx="nan"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any, digits: int = 3) -> str:
    number = finite(value)
    if number is None:
        return "—" if value is None else escape_html(value)
    return str(int(number)) if isinstance(value, int) else f"{number:.{digits}f}"


def fmt_time(timestamp: Any) -> str:
    number = finite(timestamp)
    if number is None:
        return "—"
    return datetime.fromtimestamp(number, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    raw = (high - low) / count or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def series_from(history: Sequence[dict], name: str, pick) -> dict:
    """One named series: a point per version whose x (labels) and y are both known."""
    points = []
    for entry in history:
        x, y = finite(entry.get("n_labeled")), finite(pick(entry))
        if x is not None and y is not None:
            points.append((x, y, str(entry.get("version", ""))))
    return {"name": name, "points": points}


def line_chart(series: Sequence[dict], x_label: str, y_label: str, title: str = "") -> str:
    """One ``<svg>``: axes with ticks, a legend, and per series a line and a ``circle.point`` per version."""
    points = [p for s in series for p in s["points"]]
    xs, ys = [p[0] for p in points] or [0.0], [p[1] for p in points] or [0.0]
    # Labels start at 0, so the curve shows how far the first labels got, and no point sits on the y axis.
    x_low, x_high = min(0.0, min(xs)), max(xs)
    if x_high == x_low:  # no labels anywhere: avoid dividing by zero
        x_high = x_low + 1
    # Every metric here lives in [0, 1] (kappa can dip below 0), so the frame is fixed and curves compare.
    y_low, y_high = min(0.0, min(ys)), max(1.0, max(ys))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + (y_high - y) / (y_high - y_low) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape_html(title or y_label)}">',
        f"<title>{escape_html(title or y_label)}</title>",
        _axes(sx, sy, (x_low, x_high), (y_low, y_high), x_label, y_label),
    ]
    for index, one in enumerate(series):
        parts.append(_series_svg(one, STYLES[index % len(STYLES)], sx, sy))
    parts.append(_legend(series))
    parts.append("</svg>")
    return "\n".join(parts)


def _axes(sx, sy, x_range, y_range, x_label: str, y_label: str) -> str:
    bottom, right = sy(y_range[0]), sx(x_range[1])
    out = [
        f'<line class="axis" x1="{LEFT}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom:.1f}"/>',
    ]
    for y in ticks(*y_range):
        out.append(f'<line class="grid" x1="{LEFT}" y1="{sy(y):.1f}" x2="{right:.1f}" y2="{sy(y):.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in ticks(*x_range, integer=True):
        out.append(f'<line class="axis" x1="{sx(x):.1f}" y1="{bottom:.1f}" x2="{sx(x):.1f}" y2="{bottom + 5:.1f}"/>')
        out.append(f'<text class="tick" x="{sx(x):.1f}" y="{bottom + 18:.1f}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text class="label" x="{LEFT + (right - LEFT) / 2:.1f}" y="{bottom + 36:.1f}" text-anchor="middle">{escape_html(x_label)}</text>')
    middle = TOP + (bottom - TOP) / 2
    out.append(f'<text class="label" x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})">{escape_html(y_label)}</text>')
    return "\n".join(out)


def _series_svg(one: dict, style: tuple[str, str], sx, sy) -> str:
    colour, dash = style
    points: list[Point] = one["points"]
    out = [f'<g class="series" data-series="{escape_html(one["name"])}">']
    if len(points) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
    for x, y, version in points:
        out.append(
            f'<circle class="point" data-version="{escape_html(version)}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{colour}">'
            f"<title>{escape_html(one['name'])} {y:.3f} at {x:g} labels ({escape_html(version)})</title></circle>"
        )
    out.append("</g>")
    return "\n".join(out)


def _legend(series: Sequence[dict]) -> str:
    out, x, y = [], LEFT, HEIGHT - 14
    for index, one in enumerate(series):
        colour, dash = STYLES[index % len(STYLES)]
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 24}" y2="{y - 4}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<circle cx="{x + 12}" cy="{y - 4}" r="3.5" fill="{colour}"/>')
        label = f"{one['name']} ({len(one['points'])})"
        out.append(f'<text class="legend" x="{x + 30}" y="{y}">{escape_html(label)}</text>')
        x += 44 + 7 * len(label)
    return '<g class="legend">' + "\n".join(out) + "</g>"

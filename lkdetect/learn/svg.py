"""Small SVG line plots for the learn report, written as text (no plotting library: the report stays fast to
write and its plots are plain text a test can read)."""

from __future__ import annotations

import math
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _ticks(lo: float, hi: float) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 x 10^n, at most six) within [lo, hi]."""
    span = hi - lo
    if not span > 0:
        return [lo]
    base = 10 ** math.floor(math.log10(span)) / 10
    step = next(base * m for m in (1, 2, 5, 10, 20, 50, 100) if span / (base * m) <= 6)
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 10) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def line_plot(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    xlabel: str,
    marker_x: float | None = None,
    width: int = 460,
    height: int = 250,
) -> str:
    """An SVG document: one polyline per series of (x, y) points, axes with ticks, a legend, and an optional
    vertical line at ``marker_x`` (e.g. the chosen snapshot). Series without points are left out."""
    series = {k: v for k, v in series.items() if v}
    left, right, top, bottom = 52, 12, 28, 40
    pw, ph = width - left - right, height - top - bottom
    xs = [x for pts in series.values() for x, _ in pts] + ([marker_x] if marker_x is not None else [])
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left - 4}" x2="{left}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#999"/>')
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#999"/>')
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(xlabel)}</text>')
    if marker_x is not None:
        mx = px(marker_x)
        out.append(
            f'<line class="marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + ph}" stroke="#555" '
            'stroke-dasharray="4 3"/>'
        )
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline data-series="{escape(name)}" points="{points}" fill="none" stroke="{colour}"/>')
        if len(pts) == 1:
            out.append(f'<circle cx="{px(pts[0][0]):.1f}" cy="{py(pts[0][1]):.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 12 + 14 * i
        out.append(f'<line x1="{left + 8}" x2="{left + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}"/>')
        out.append(f'<text x="{left + 28}" y="{ly}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"

"""Server-side SVG charts: bar charts, histograms with thresholds, and the run funnel.

Why SVG strings from Python: the pages and the static report then need no
JavaScript at all (nothing to load from a CDN, nothing for a strict
Content-Security-Policy to block), and the same function draws both. Every label
passes through `visible.plain` (labels are data: source names, languages,
reasons), which escapes it and shows its control characters as escapes, and only presentation attributes are used (inline `style` attributes
would need 'unsafe-inline').
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from jobs.web.visible import plain

KEPT_COLOR = "#3b7dd8"
DROPPED_COLOR = "#e07b39"
THRESHOLD_COLOR = "#c0392b"
TEXT_COLOR = "#333"
WIDTH = 640


def fmt(value: Any) -> str:
    """Compact number: 1234567 -> 1.23M, 0.123456 -> 0.123."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        n = int(value)
        for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e4)):
            if abs(n) >= size:
                return f"{n / size:.3g}{unit}" if unit != "k" else f"{n / 1e3:.3g}k"
        return str(n)
    return f"{value:.3g}"


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{plain(label)}">'
        f"<title>{plain(label)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def bars(
    items: Sequence[tuple[Any, float, float]], label: str, legend: tuple[str, str] = ("kept", "dropped")
) -> Markup:
    """Horizontal stacked bars: (label, first value, second value) per row, e.g. kept and dropped documents."""
    if not items:
        return Markup('<p class="empty">no data</p>')
    row, left, right = 20, 170, 70
    height = row * len(items) + 30
    top = max((a or 0) + (b or 0) for _, a, b in items) or 1
    scale = (WIDTH - left - right) / top
    body = []
    for i, (name, first, second) in enumerate(items):
        y = 24 + i * row
        text = str(name) if name is not None else "(none)"
        short = text if len(text) <= 26 else text[:25] + "…"
        w1, w2 = (first or 0) * scale, (second or 0) * scale
        body.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="12" fill="{TEXT_COLOR}">'
            f"<title>{plain(text)}</title>{plain(short)}</text>"
        )
        body.append(f'<rect x="{left}" y="{y + 2}" width="{w1:.1f}" height="{row - 5}" fill="{KEPT_COLOR}"/>')
        body.append(
            f'<rect x="{left + w1:.1f}" y="{y + 2}" width="{w2:.1f}" height="{row - 5}" fill="{DROPPED_COLOR}"/>'
        )
        total = f"{fmt(first)}" + (f" + {fmt(second)}" if second else "")
        body.append(
            f'<text x="{left + w1 + w2 + 4:.1f}" y="{y + 13}" font-size="11" fill="{TEXT_COLOR}">{plain(total)}</text>'
        )
    body.append(_legend(legend, left, 12))
    return _svg(WIDTH, height, body, label)


def _legend(names: tuple[str, str], x: int, y: int) -> str:
    parts = []
    for i, (name, color) in enumerate(zip(names, (KEPT_COLOR, DROPPED_COLOR), strict=True)):
        if name:
            parts.append(f'<rect x="{x + i * 90}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
            parts.append(
                f'<text x="{x + i * 90 + 14}" y="{y}" font-size="11" fill="{TEXT_COLOR}">{plain(name)}</text>'
            )
    return "".join(parts)


def histogram(spec: dict[str, Any]) -> Markup:
    """Stacked kept/dropped bins of one numeric column, with its thresholds as vertical lines."""
    edges, kept, dropped = spec.get("edges") or [], spec.get("kept") or [], spec.get("dropped") or []
    label = f"histogram of {spec.get('label') or spec['column']}"
    if not kept:
        return Markup('<p class="empty">no values</p>')
    height, left, bottom, top_pad = 190, 50, 34, 22
    plot_w, plot_h = WIDTH - left - 20, height - bottom - top_pad
    top = max(k + d for k, d in zip(kept, dropped, strict=True)) or 1
    bw = plot_w / len(kept)
    body = [_legend(("kept", "dropped"), left, 12)]
    for i, (k, d) in enumerate(zip(kept, dropped, strict=True)):
        x = left + i * bw
        hk, hd = k / top * plot_h, d / top * plot_h
        base = top_pad + plot_h
        tip = f"{fmt(edges[i])} – {fmt(edges[i + 1])}: {k} kept, {d} dropped"
        body.append(
            f"<g><title>{plain(tip)}</title>"
            f'<rect x="{x:.1f}" y="{base - hk:.1f}" width="{max(bw - 1, 1):.1f}" height="{hk:.1f}" fill="{KEPT_COLOR}"/>'
            f'<rect x="{x:.1f}" y="{base - hk - hd:.1f}" width="{max(bw - 1, 1):.1f}" height="{hd:.1f}" fill="{DROPPED_COLOR}"/></g>'
        )
    axis_y = top_pad + plot_h
    body.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#999"/>')
    for i in (0, len(kept) // 2, len(kept)):
        x = left + i * bw
        body.append(
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" font-size="10" fill="{TEXT_COLOR}">{plain(fmt(edges[i]))}</text>'
        )
    body.append(
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end" font-size="10" fill="{TEXT_COLOR}">{fmt(top)}</text>'
    )
    scale_note = {"log": " (log bins)", "unit": ""}.get(spec.get("scale", ""), "")
    body.append(
        f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end" font-size="11" fill="{TEXT_COLOR}">'
        f"{plain(str(spec.get('label') or spec['column']) + scale_note)}</text>"
    )
    body += [
        _threshold(t, edges, spec.get("scale"), left, bw, top_pad, plot_h) for t in spec.get("thresholds", [])
    ]
    return _svg(WIDTH, height, body, label)


def _position(value: float, edges: Sequence[float]) -> float | None:
    """Fractional bin position of `value` (interpolated inside its bin), or None outside the range."""
    if value < edges[0] or value > edges[-1]:
        return None
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        if lo <= value <= hi:
            return i + ((value - lo) / (hi - lo) if hi > lo else 0.0)
    return None


def _threshold(
    t: dict[str, Any], edges: Sequence[float], scale: str | None, left: float, bw: float, top: float, h: float
) -> str:
    pos = _position(float(t["value"]), edges)
    if pos is None:
        return ""
    x = left + pos * bw
    tip = f"threshold {t['reason']} ({t['op']} {t['value']}, stage {t['stage']})"
    return (
        f'<g class="threshold"><title>{plain(tip)}</title>'
        f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + h}" stroke="{THRESHOLD_COLOR}" stroke-width="2" stroke-dasharray="4 2"/>'
        f'<text x="{x + 3:.1f}" y="{top + 6}" font-size="10" fill="{THRESHOLD_COLOR}">{plain(t["op"])} {plain(fmt(t["value"]))}</text></g>'
    )


def funnel(stages: Sequence[dict[str, Any]]) -> Markup:
    """Kept and dropped documents after each stage that wrote a table with decisions."""
    items = []
    for s in stages:
        out = s.get("out") or {}
        if out.get("docs") is not None:
            kept = out.get("kept_docs", out["docs"])
            items.append((s["id"], kept, out["docs"] - kept))
    return bars(items, "documents kept and dropped after each stage")


def timings(stages: Sequence[dict[str, Any]]) -> Markup:
    """Seconds per stage."""
    items = [(s["id"], s.get("seconds") or 0.0, 0.0) for s in stages]
    return bars(items, "seconds per stage", legend=("seconds", ""))

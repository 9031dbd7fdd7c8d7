"""Evidence charts as inline SVG, drawn on the server: no script, no library, no network.

One chart per cited series: the normal period before the onset in grey, the incident period after it
in red on a shaded band, the onset as a dashed line, the baseline the engine measured as a dotted
line. Every text in the SVG is escaped (service and signal names come from the monitored system).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

from opsagent.domain import EvidenceItem, MetricSeries

WIDTH, HEIGHT = 560, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 12, 22, 26


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.3g}"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def series_chart(
    series: MetricSeries, item: EvidenceItem | None = None, *, split: float | None = None
) -> Markup:
    """The series as an SVG chart; ``split`` (epoch seconds) divides normal from incident period.

    Without ``split`` the item's onset is used; without either the chart has one period only.
    """
    pairs = [
        (t, v)
        for t, v in zip(series.timestamps, series.values, strict=False)
        if math.isfinite(t) and math.isfinite(v)
    ]
    title = f"{series.service} · {series.signal}" + (f" → {series.peer}" if series.peer else "")
    if len(pairs) < 2:
        return Markup(
            f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} 40" width="{WIDTH}" height="40">'
            f"<title>{escape(title)}</title>"
            f'<text x="8" y="24">{escape(title)}: too few points to draw</text></svg>'
        )
    onset = split if split is not None else (item.onset if item is not None else None)
    t0, t1 = pairs[0][0], pairs[-1][0]
    values = [v for _, v in pairs]
    if item is not None and item.baseline is not None and math.isfinite(item.baseline):
        values.append(item.baseline)
    lo, hi = min(values), max(values)
    if hi == lo:
        hi, lo = hi + 1.0, lo - 1.0 if lo != 0 else 0.0
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(t: float) -> float:
        return _LEFT + (t - t0) / (t1 - t0) * plot_w if t1 > t0 else _LEFT

    def y(v: float) -> float:
        return _TOP + (1 - (v - lo) / (hi - lo)) * plot_h

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' data-series="{escape(series.id)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{_LEFT}" y="14">{escape(title)}</text>',
    ]
    inside = onset is not None and t0 < onset < t1
    if inside and onset is not None:
        ox = x(onset)
        parts.append(
            f'<rect class="incident-band" x="{ox:.1f}" y="{_TOP}" width="{_LEFT + plot_w - ox:.1f}"'
            f' height="{plot_h}"/>'
        )
    # Axes and their labels.
    parts.append(
        f'<path class="axis" d="M{_LEFT},{_TOP} L{_LEFT},{_TOP + plot_h} L{_LEFT + plot_w},{_TOP + plot_h}"/>'
    )
    parts.append(f'<text class="tick" x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{_fmt(hi)}</text>')
    parts.append(
        f'<text class="tick" x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">{_fmt(lo)}</text>'
    )
    parts.append(f'<text class="tick" x="{_LEFT}" y="{HEIGHT - 8}">{_clock(t0)}</text>')
    parts.append(
        f'<text class="tick" x="{_LEFT + plot_w}" y="{HEIGHT - 8}" text-anchor="end">{_clock(t1)} UTC</text>'
    )
    if item is not None and item.baseline is not None and math.isfinite(item.baseline):
        by = y(item.baseline)
        parts.append(
            f'<path class="baseline" d="M{_LEFT},{by:.1f} L{_LEFT + plot_w},{by:.1f}"><title>baseline '
            f"{_fmt(item.baseline)}</title></path>"
        )
    if inside and onset is not None:
        normal = [(x(t), y(v)) for t, v in pairs if t <= onset]
        incident = [(x(t), y(v)) for t, v in pairs if t >= onset]
        # Join the two lines at the onset so the chart reads as one series.
        if normal and incident and normal[-1] != incident[0]:
            incident.insert(0, normal[-1])
        if len(normal) >= 1:
            parts.append(f'<path class="line normal" d="{_path(normal)}"/>')
        if len(incident) >= 1:
            parts.append(f'<path class="line incident" d="{_path(incident)}"/>')
        ox = x(onset)
        parts.append(
            f'<path class="onset" d="M{ox:.1f},{_TOP} L{ox:.1f},{_TOP + plot_h}"/>'
            f'<text class="onset-label" x="{ox + 3:.1f}" y="{_TOP + 10}">onset {_clock(onset)}</text>'
        )
        parts.append(
            f'<text class="legend" x="{_LEFT + plot_w}" y="14" text-anchor="end">'
            '<tspan class="normal">normal</tspan> · <tspan class="incident">incident</tspan></text>'
        )
    else:
        parts.append(f'<path class="line incident" d="{_path([(x(t), y(v)) for t, v in pairs])}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def cause_charts(
    series: Sequence[MetricSeries], service: str, items: Sequence[EvidenceItem], *, split: float | None = None
) -> list[Markup]:
    """Charts for one root cause: its cited series; when it cites none (traces, logs), the series kept
    for its service, split at its earliest evidence onset (else ``split``)."""
    charts = cited_charts(series, items, split=split)
    if charts:
        return charts
    onsets = [i.onset for i in items if i.onset is not None]
    at = min(onsets) if onsets else split
    return [series_chart(s, None, split=at) for s in series if s.service == service and s.peer is None]


def cited_charts(
    series: Sequence[MetricSeries], items: Sequence[EvidenceItem], *, split: float | None = None
) -> list[Markup]:
    """A chart for each metric item that has its series (by id, else by service and signal)."""
    by_id = {s.id: s for s in series}
    by_name = {(s.service, s.signal): s for s in series if s.peer is None}
    out: list[Markup] = []
    seen: set[str] = set()
    for item in items:
        found = by_id.get(item.id) or (by_name.get((item.service, item.signal)) if item.signal else None)
        if found is None or found.id in seen:
            continue
        seen.add(found.id)
        out.append(series_chart(found, item, split=split if item.onset is None else None))
    return out

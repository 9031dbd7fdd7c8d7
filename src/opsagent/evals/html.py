"""The evaluation report as one self-contained HTML page: inline SVG charts, no script, no network.

Charts are drawn here as plain SVG (bars with labels), so the page opens anywhere, offline, and
diffs as text. The page layout is a Jinja template in ``evals/templates/``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

_TEMPLATES = Path(__file__).resolve().parent / "templates"
METRICS = ("ac@1", "ac@3", "ac@5", "avg@5")
_COLOURS = ("#4c78a8", "#72b7b2", "#54a24b", "#f58518", "#b279a2", "#e45756", "#9d755d", "#bab0ac")
RANK_BUCKETS = ("1", "2", "3", "4", "5", "6-10", ">10", "not ranked")


def rank_bucket(rank: int | None) -> str:
    if rank is None:
        return "not ranked"
    if rank <= 5:
        return str(rank)
    return "6-10" if rank <= 10 else ">10"


def bar_chart(
    groups: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    *,
    title: str,
    max_value: float = 1.0,
    percent: bool = True,
    height: int = 220,
    bar_w: int = 16,
) -> Markup:
    """Grouped vertical bars: one group per (label, values), one bar per series, a legend on top."""
    gap, pad_left, pad_bottom, pad_top = 22, 40, 46, 44
    longest = max((len(label) for label, _ in groups), default=1)
    # Wide enough for the bars and for the group's label (about 7 px per character at 11 px).
    group_w = max(len(series) * bar_w + gap, 7 * longest + 8)
    width = max(pad_left + len(groups) * group_w + 20, 260)
    plot_h = height - pad_bottom - pad_top
    top = max(max_value, 1e-9)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="4" y="14" class="title">{escape(title)}</text>',
    ]
    for i, name in enumerate(series):
        lx = pad_left + i * 70
        parts.append(f'<rect x="{lx}" y="22" width="10" height="10" fill="{_COLOURS[i % len(_COLOURS)]}"/>')
        parts.append(f'<text x="{lx + 14}" y="31" class="legend">{escape(name)}</text>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = pad_top + plot_h * (1 - frac)
        label = f"{100 * frac * top:.0f}%" if percent else f"{frac * top:.0f}"
        parts.append(f'<line x1="{pad_left - 4}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{pad_left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{label}</text>'
        )
    for g, (label, values) in enumerate(groups):
        x0 = pad_left + g * group_w + (group_w - len(values) * bar_w) / 2
        for i, value in enumerate(values):
            h = plot_h * max(0.0, min(value, top)) / top
            x = x0 + i * bar_w
            by = pad_top + plot_h - h
            shown = f"{100 * value:.0f}%" if percent else f"{value:g}"
            parts.append(
                f'<rect x="{x:.1f}" y="{by:.1f}" width="{bar_w - 2}" height="{h:.1f}" '
                f'fill="{_COLOURS[i % len(_COLOURS)]}"><title>{escape(label)} {escape(series[i])}: '
                f"{shown}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + len(values) * bar_w / 2:.1f}" y="{height - pad_bottom + 16}" '
            f'class="axis" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _charts(doc: dict[str, Any]) -> dict[str, Any]:
    datasets: dict[str, Any] = doc["datasets"]
    overall = bar_chart(
        [(name, [float(entry[m]) for m in METRICS]) for name, entry in datasets.items()],
        [m.upper().replace("AVG", "Avg") for m in METRICS],
        title="AC@k per dataset",
    )
    per_fault = {
        name: bar_chart(
            [(fault, [float(sub[m]) for m in METRICS]) for fault, sub in entry["by_fault"].items()],
            [m.upper().replace("AVG", "Avg") for m in METRICS],
            title=f"{name}: AC@k per true fault type",
        )
        for name, entry in datasets.items()
    }
    counts: dict[str, list[float]] = {name: [0.0] * len(RANK_BUCKETS) for name in datasets}
    for case in doc["cases"]:
        if case["dataset"] in counts:
            counts[case["dataset"]][RANK_BUCKETS.index(rank_bucket(case["rank_of_truth"]))] += 1
    ranks = {
        name: bar_chart(
            [(bucket, [values[i]]) for i, bucket in enumerate(RANK_BUCKETS)],
            ["cases"],
            title=f"{name}: rank of the true root cause",
            # A multiple of 4, so the quarter grid lines fall on whole cases.
            max_value=4.0 * math.ceil(max(max(values), 1.0) / 4.0),
            percent=False,
            bar_w=40,
        )
        for name, values in counts.items()
    }
    return {"overall": overall, "per_fault": per_fault, "ranks": ranks}


def render_html(doc: dict[str, Any]) -> str:
    """The page for a report document as built by ``evals.report.build_document``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * float(v):.1f}"
    env.filters["secs"] = lambda v: "-" if v is None else f"{float(v):.2f}"
    cases = [dict(case, anchor=f"case-{i}") for i, case in enumerate(doc["cases"], start=1)]
    template = env.get_template("eval_report.html.j2")
    return template.render(doc=doc, cases=cases, charts=_charts(doc), metrics=METRICS)

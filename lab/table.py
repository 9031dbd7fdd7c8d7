"""``python -m lab table REPORT``: a campaign report as Markdown tables: overall and per fault kind,
fresh against reopened incidents, and per case."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "–"


def _row(name: str, cases: list[dict[str, Any]]) -> str:
    n = len(cases)
    ac1 = sum(1 for c in cases if c.get("rank_of_truth") == 1)
    ac3 = sum(1 for c in cases if c.get("rank_of_truth") is not None and c["rank_of_truth"] <= 3)
    typed = sum(1 for c in cases if c.get("top_fault_type") == c.get("fault_type"))
    final = sum(1 for c in cases if c.get("rank_final") == 1)
    to_alert = [c["fault_to_alert_s"] for c in cases if c.get("fault_to_alert_s") is not None]
    to_findings = [c["alert_to_findings_s"] for c in cases if c.get("alert_to_findings_s") is not None]
    return (
        f"| {name} | {n} | {ac1 / n:.2f} | {ac3 / n:.2f} | {typed / n:.2f} | {final / n:.2f} | "
        f"{_median(to_alert)} | {_median(to_findings)} |"
    )


def _by_episode(cases: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Fresh incidents (the first firing of their alert group) against reopened ones (a later episode)."""
    fresh = [c for c in cases if c.get("episode") == 1]
    reopened = [c for c in cases if (c.get("episode") or 0) > 1]
    unknown = [c for c in cases if c.get("episode") is None]
    groups = [("fresh", fresh), ("reopened", reopened), ("no incident", unknown)]
    return [(name, group) for name, group in groups if group]


def render(path: str) -> str:
    doc = json.loads(Path(path).read_text())
    cases: list[dict[str, Any]] = doc["cases"]
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case in cases:
        kinds[case["kind"]].append(case)
    lines = [
        "| faults | n | AC@1 | AC@3 | type | AC@1 final | fault→alert p50 s | alert→findings p50 s |",
        "|---|---|---|---|---|---|---|---|",
        _row("all", cases),
        *(_row(kind, kinds[kind]) for kind in sorted(kinds)),
        "",
        "| incident | n | AC@1 | AC@3 | type | AC@1 final | fault→alert p50 s | alert→findings p50 s |",
        "|---|---|---|---|---|---|---|---|",
        *(_row(name, group) for name, group in _by_episode(cases)),
        "",
        f"alerts sent {doc['alerts_sent']}, received {doc['alerts_received']}; replay: "
        f"{doc.get('replay', {}).get('same_top', 0)} of {doc.get('replay', {}).get('replayed', 0)} "
        "recorded cases give the live top",
        "",
        "| # | kind | target | top (type) | rank | final top | replay top | episode | fault→alert s | alert→findings s | load1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, c in enumerate(cases, start=1):
        lines.append(
            f"| {number} | {c['kind']} | {c['target']} | {c.get('top')} ({c.get('top_fault_type')}) | "
            f"{c.get('rank_of_truth')} | {c.get('top_final')} | {c.get('replay_top')} | {c.get('episode')} | "
            f"{c.get('fault_to_alert_s')} | "
            f"{c.get('alert_to_findings_s')} | {c.get('load1')} |"
        )
    return "\n".join(lines)

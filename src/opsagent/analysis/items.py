"""Evidence items: what the report prints and the LLM cites for each ranked suspect.

One function per kind of evidence, each turning the engine's finding into a citable
``EvidenceItem`` with a one-line summary an on-call engineer can read at a glance.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opsagent.analysis.events import PatternShift
from opsagent.analysis.impact import Excess
from opsagent.analysis.series import ScoredSeries
from opsagent.domain import EvidenceItem
from opsagent.domain.findings import EvidenceKind


def _fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S") if ts is not None else "?"


def series_item(entry: ScoredSeries) -> EvidenceItem:
    s, r = entry.series, entry.result
    baseline, peak = r.baseline, r.peak
    if s.complement_of is not None:
        # scored as the failing or down share; told as the signal the reader knows
        baseline, peak = s.complement_of - baseline, s.complement_of - peak
    verb = "rose" if peak >= baseline else "fell"
    what = s.signal if s.source == "metric" else s.signal.replace("trace_", "span ")
    return EvidenceItem(
        id=s.id,
        kind="metric" if s.source == "metric" else "trace",
        service=s.service,
        signal=s.signal,
        baseline=round(baseline, 6),
        peak=round(peak, 6),
        onset=r.onset,
        score=round(entry.weighted, 3),
        summary=(
            f"{what} {verb} from {baseline:.4g} to {peak:.4g} ({r.z_max:.1f} robust sd)"
            f" from {_fmt_time(r.onset)}"
        ),
    )


_PATTERN_WORDS = {
    "log": "log template",
    "operation": "span operation",
    "call": "calls",
    "error": "failed spans",
    "origin": "error originating here",
    "handler": "handler",
}


# the evidence family an event belongs to (a call edge's samples are metrics)
_ITEM_KIND: dict[str, EvidenceKind] = {"log": "log", "origin": "log", "edge": "metric"}


def _edge_summary(p: PatternShift) -> str:
    return (
        f"calls to {p.key} went silent: {p.incident_count} samples with calls where {p.expected:.3g}"
        f" were expected ({p.normal_count} before), while it kept being called (a code path stopped),"
        f" {p.z:+.1f} sd"
    )


def _handler_summary(p: PatternShift) -> str:
    before, after = p.requests or (0, 0)
    operation, _, steps = p.key.partition(": ")
    return (
        f"handler {operation} stopped taking {steps}: {p.incident_count} of {after} requests since"
        f" the change took them where {p.expected:.3g} were expected ({p.normal_count} of {before}"
        f" before), while the requests kept coming (a code path stopped), {p.z:+.1f} sd"
    )


def _pattern_summary(p: PatternShift) -> str:
    if p.kind == "edge":
        return _edge_summary(p)
    if p.kind == "handler":
        return _handler_summary(p)
    if p.is_new:
        change = f"new, {p.incident_count}x"
    elif p.is_gone:
        change = f"gone (was {p.normal_count}x)"
    else:
        change = f"{p.normal_count}x -> {p.incident_count}x (expected {p.expected:.3g})"
    if p.code_path_stopped:
        # the on-call reader's question about a fall: less traffic, or a code path that stopped?
        change += " while the requests it serves kept coming (a code path stopped)"
    return f"{'error ' if p.error else ''}{_PATTERN_WORDS[p.kind]} {change}, {p.z:+.1f} sd: {p.key}"


def pattern_item(p: PatternShift) -> EvidenceItem:
    return EvidenceItem(
        id=f"pattern:{p.service}:{p.kind}:{p.digest}",
        kind=_ITEM_KIND.get(p.kind, "trace"),
        service=p.service,
        signal=p.kind,
        baseline=round(p.expected, 3),
        peak=float(p.incident_count),
        onset=p.first_seen,
        score=round(p.score, 3),
        summary=_pattern_summary(p),
    )


def victim_item(service: str, callee: str, *, went_down: bool = False) -> EvidenceItem:
    summary = (
        f"depends on {callee}, which went down: a victim of that outage"
        if went_down
        else f"calls {callee}, which is at least as anomalous: likely a victim"
    )
    return EvidenceItem(id=f"topology:{service}", kind="topology", service=service, summary=summary)


def placement_item(
    service: str,
    callers: list[str],
    healthy_callees: list[str],
    answered: list[str] | None = None,
    silenced: list[str] | None = None,
) -> EvidenceItem:
    """Where an unexplained suspect sits in the call graph; ``answered``: the callees its failing
    requests called and found answering normally (``propagate.answered_callees``); ``silenced``: the
    callees it stopped calling (``propagate.silenced_callees``)."""
    where = f"called by {', '.join(callers) or 'nobody'}"
    summary = f"{where}; calls {', '.join(healthy_callees) or 'nothing'}; no anomalous callee explains it"
    if answered:
        summary += f" (its failing requests called {', '.join(answered)}, which answered them normally)"
    if silenced:
        summary += f" (it stopped calling {', '.join(silenced)}: their lost traffic is its doing)"
    return EvidenceItem(id=f"topology:{service}", kind="topology", service=service, summary=summary)


def impact_item(service: str, weight: float, own: Excess) -> EvidenceItem:
    return EvidenceItem(
        id=f"impact:{service}",
        kind="topology",
        service=service,
        score=round(weight, 3),
        summary=(
            f"its own excess over the incident: {own.seconds:.4g} request-seconds,"
            f" {own.failures:.4g} failed requests; weight {weight:.2f} for the share of the"
            " alerted symptom it could account for"
        ),
    )

"""Suspect ranking: which services most likely caused the incident, with the evidence for each.

Steps: split the window into a normal period and the incident; score every series robustly; take
each service's strongest signals; add log-template shifts; discount services whose anomaly is
explained by an anomalous service they call (faults propagate from callee to caller); guess the
fault type from the kinds of signal that moved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from opsagent.analysis.logs import TemplateShift, template_shifts
from opsagent.analysis.scoring import SeriesScore, score_series
from opsagent.domain import (
    EvidenceBundle,
    EvidenceItem,
    FaultType,
    MetricSeries,
    SignalKind,
    Suspect,
    Topology,
)

# The incident window starts this long before the alert, so a fault that began before the alert
# fired is not counted as normal; capped at a quarter of the history so some normal period is left.
ALERT_LEAD_SECONDS = 15 * 60
MAX_LEAD_SHARE = 0.25
# A service whose strongest callee is at least this anomalous relative to itself is more likely a
# victim of that callee than a cause; its score is multiplied by VICTIM_DISCOUNT.
PROPAGATION_RATIO = 0.7
VICTIM_DISCOUNT = 0.5
# Weight of log evidence against metric evidence (log scores and metric scores are both log-scaled).
LOG_WEIGHT = 0.5
# Evidence items kept per suspect.
EVIDENCE_PER_SUSPECT = 5

_KIND_TO_FAULT: dict[SignalKind, FaultType] = {
    SignalKind.CPU: FaultType.CPU,
    SignalKind.MEMORY: FaultType.MEMORY,
    SignalKind.RESTARTS: FaultType.MEMORY,
    SignalKind.LATENCY: FaultType.LATENCY_NETWORK,
    SignalKind.NETWORK: FaultType.LATENCY_NETWORK,
    SignalKind.ERRORS: FaultType.ERRORS_CODE,
}


@dataclass(frozen=True)
class Split:
    """Where the normal period ends and the incident window starts (epoch seconds)."""

    normal_end: float
    incident_start: float
    window_start: float
    window_end: float


def split_for(bundle: EvidenceBundle) -> Split:
    inc = bundle.incident
    start, end = inc.window.start_s, inc.window.end_s
    alert = inc.alert_time.timestamp() if inc.alert_time else start + (end - start) * 0.75
    lead = min(ALERT_LEAD_SECONDS, MAX_LEAD_SHARE * max(alert - start, 0.0))
    cut = alert - lead
    return Split(normal_end=cut, incident_start=cut, window_start=start, window_end=end)


@dataclass
class _Scored:
    series: MetricSeries
    result: SeriesScore


def _fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S") if ts is not None else "?"


def _metric_item(entry: _Scored) -> EvidenceItem:
    s, r = entry.series, entry.result
    verb = "rose" if r.peak >= r.baseline else "fell"
    return EvidenceItem(
        id=s.id,
        kind="metric",
        service=s.service,
        signal=s.signal,
        baseline=round(r.baseline, 6),
        peak=round(r.peak, 6),
        onset=r.onset,
        score=round(r.score, 3),
        summary=(
            f"{s.signal} {verb} from {r.baseline:.4g} to {r.peak:.4g} ({r.z_max:.1f} robust sd)"
            f" from {_fmt_time(r.onset)}"
        ),
    )


def _log_item(shift: TemplateShift, index: int) -> EvidenceItem:
    novelty = "new" if shift.is_new else f"up from {shift.normal_count}"
    return EvidenceItem(
        id=f"log:{shift.service}:{index}",
        kind="log",
        service=shift.service,
        onset=shift.first_seen,
        score=round(shift.score, 3),
        summary=f"{'error ' if shift.error else ''}log template {novelty}, {shift.incident_count}x: {shift.template}",
    )


def fault_type_of(scored: list[_Scored]) -> FaultType:
    """The fault type whose signal kinds moved most (ties: the earliest onset wins)."""
    best: dict[FaultType, tuple[float, float]] = {}
    for entry in scored:
        fault = _KIND_TO_FAULT.get(entry.series.kind)
        if fault is None:
            continue
        onset = entry.result.onset if entry.result.onset is not None else float("inf")
        current = best.get(fault)
        if current is None or entry.result.score > current[0]:
            best[fault] = (entry.result.score, onset)
    if not best:
        return FaultType.UNKNOWN
    return max(best.items(), key=lambda kv: (kv[1][0], -kv[1][1]))[0]


def _propagation_adjust(
    scores: dict[str, float], metric_scores: dict[str, float], topology: Topology
) -> dict[str, str]:
    """Discount likely victims in place; return service -> the callee that explains it.

    Compared on metric evidence only: a caller's logs usually echo its callee's failures
    ("upstream payment returned 500"), which says nothing about who failed first.
    """
    explained_by: dict[str, str] = {}
    for service, own in metric_scores.items():
        callees = [c for c in topology.callees(service) if c in metric_scores and c != service]
        if not callees or own <= 0:
            continue
        top = max(callees, key=lambda c: metric_scores[c])
        if metric_scores[top] >= PROPAGATION_RATIO * own:
            scores[service] *= VICTIM_DISCOUNT
            explained_by[service] = top
    return explained_by


def rank_suspects(bundle: EvidenceBundle) -> list[Suspect]:
    """Every service with evidence, most likely root cause first."""
    split = split_for(bundle)
    per_service: dict[str, list[_Scored]] = defaultdict(list)
    for series in bundle.metrics:
        result = score_series(
            np.asarray(series.timestamps, dtype=np.float64),
            np.asarray(series.values, dtype=np.float64),
            split.incident_start,
            series.kind,
            series.signal,
            normal_end=split.normal_end,
        )
        if result is not None:
            per_service[series.service].append(_Scored(series, result))

    shifts = template_shifts(
        bundle.logs,
        split.incident_start,
        normal_seconds=split.normal_end - split.window_start,
        incident_seconds=split.window_end - split.incident_start,
    )
    log_by_service: dict[str, list[TemplateShift]] = defaultdict(list)
    for shift in shifts:
        log_by_service[shift.service].append(shift)

    services = set(per_service) | set(log_by_service)
    scores: dict[str, float] = {}
    metric_scores: dict[str, float] = {}
    for service in services:
        ranked = sorted(per_service.get(service, []), key=lambda e: -e.result.score)
        metric_score = ranked[0].result.score if ranked else 0.0
        if len(ranked) > 1:
            metric_score += 0.1 * ranked[1].result.score
        log_score = log_by_service[service][0].score if log_by_service.get(service) else 0.0
        metric_scores[service] = metric_score
        scores[service] = metric_score + LOG_WEIGHT * max(log_score, 0.0)

    explained_by = _propagation_adjust(scores, metric_scores, bundle.topology)

    suspects: list[Suspect] = []
    for service in services:
        ranked = sorted(per_service.get(service, []), key=lambda e: -e.result.score)
        evidence = [_metric_item(e) for e in ranked[: EVIDENCE_PER_SUSPECT - 2] if e.result.z_max > 0]
        evidence.extend(_log_item(s, i) for i, s in enumerate(log_by_service.get(service, [])[:2]))
        if service in explained_by:
            evidence.append(
                EvidenceItem(
                    id=f"topology:{service}",
                    kind="topology",
                    service=service,
                    summary=f"calls {explained_by[service]}, which is at least as anomalous: likely a victim",
                )
            )
        else:
            callers = bundle.topology.callers(service)
            if callers:
                evidence.append(
                    EvidenceItem(
                        id=f"topology:{service}",
                        kind="topology",
                        service=service,
                        summary=f"called by {', '.join(sorted(callers))}; no anomalous callee explains it",
                    )
                )
        suspects.append(
            Suspect(
                service=service,
                score=round(scores[service], 4),
                fault_type=fault_type_of(ranked[:3]),
                evidence=evidence,
            )
        )
    suspects.sort(key=lambda s: (-s.score, s.service))
    return suspects

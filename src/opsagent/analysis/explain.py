"""Stage 7, explain: each suspect with its fault type and the evidence that made it rank.

The fault type follows the mechanism, from the specific signal kinds that moved first and are still
out when the alert fires (``faults.classify``). The evidence items are what the report prints and an
LLM cites (``items.py``).
"""

from __future__ import annotations

import numpy as np

from opsagent.analysis.faults import KIND_TO_FAULT, MOVED_Z, KindEvidence, classify
from opsagent.analysis.impact import Excess
from opsagent.analysis.items import impact_item, pattern_item, placement_item, series_item, victim_item
from opsagent.analysis.options import EngineOptions
from opsagent.analysis.propagate import Placement
from opsagent.analysis.scoring import ONSET_Z
from opsagent.analysis.series import ScoredSeries, ServiceEvidence
from opsagent.domain import EvidenceItem, FaultType, Suspect

# Fault typing: the "first minute" of a series' move, in which a fault's own resource has made most
# of it (a level shift) while a side effect is still growing: one sample at the coarsest common
# resolution (1 min), a few of the ~10 s updates of finer recordings.
EARLY_SECONDS = 60.0
# Evidence items kept per suspect, by kind.
METRIC_ITEMS = 3
TRACE_ITEMS = 2
# Changed log/span events kept per suspect (strongest first): enough to show the new error and the
# code path it replaced.
PATTERN_ITEMS = 3


def _early_share(e: ScoredSeries) -> float | None:
    """Share of a series' move (incident peak over baseline) made within EARLY_SECONDS of its onset."""
    r = e.result
    move = r.peak - r.baseline
    if r.onset is None or move <= 0:
        return None
    first = e.series.vs[(e.series.ts >= r.onset) & (e.series.ts < r.onset + EARLY_SECONDS)]
    if not first.size:
        return None
    return float(np.clip((float(first.max()) - r.baseline) / move, 0.0, 1.0))


def kind_evidence(ev: ServiceEvidence, code_path_falls: bool = True) -> list[KindEvidence]:
    out: list[KindEvidence] = []
    for e in ev.scored:
        fault = KIND_TO_FAULT.get(e.series.kind)
        if fault is not None and e.series.source != "client":
            # a move that was over before the alert fired is an earlier episode's, not this fault's
            z = e.result.z_max if e.result.z_current is None else min(e.result.z_max, e.result.z_current)
            at = e.result.saturated_at
            if at is None:
                out.append(KindEvidence(fault, z, e.result.onset, _early_share(e)))
            else:
                # at its limit: CPU moved, from when it got there at the latest, whatever its sd
                onset = at if e.result.onset is None else min(at, e.result.onset)
                out.append(KindEvidence(fault, max(z, MOVED_Z), onset, _early_share(e), saturated=True))
    for pattern in ev.patterns:
        if pattern.error and pattern.z > 0:
            out.append(KindEvidence(FaultType.ERRORS_CODE, pattern.z, pattern.first_seen))
        elif code_path_falls and pattern.code_path_stopped:
            out.append(KindEvidence(FaultType.ERRORS_CODE, -pattern.z, pattern.first_seen))
    return out


def view_item(view: str, service: str) -> EvidenceItem:
    """A callers' view of another service's fault (``propagate.caller_views``)."""
    return EvidenceItem(
        id=f"topology:{view}",
        kind="topology",
        service=view,
        summary=(
            f"calls nothing and is called only by callers of {service}, whose fault it moves with and"
            " whose excess covers its own: a view of that service (a balancer or proxy in front of it)"
        ),
    )


def _items(
    service: str, ev: ServiceEvidence, placement: Placement, impact: dict[str, tuple[float, Excess]]
) -> list[EvidenceItem]:
    ranked = sorted(ev.scored, key=lambda e: -e.weighted)
    strong = [e for e in ranked if e.result.z_max >= ONSET_Z]
    items = [series_item(e) for e in strong if e.series.source == "metric"][:METRIC_ITEMS]
    items += [series_item(e) for e in strong if e.series.source == "trace"][:TRACE_ITEMS]
    items += [pattern_item(p) for p in ev.patterns[:PATTERN_ITEMS]]
    callees, callers = placement.callees, placement.callers
    if service in placement.views:
        items.append(view_item(service, placement.views[service]))
    elif service in placement.explained_by:
        culprit = placement.explained_by[service]
        items.append(victim_item(service, culprit, went_down=culprit in placement.down))
    elif callers.get(service) or callees.get(service):
        healthy = sorted(c for c in callees.get(service, ()) if c not in placement.explained_by)
        answered = sorted(placement.answered.get(service, set()) & callees.get(service, set()))
        silenced = sorted(placement.silenced.get(service, set()) & callees.get(service, set()))
        items.append(placement_item(service, sorted(callers.get(service, ())), healthy, answered, silenced))
    if service in impact:
        items.append(impact_item(service, *impact[service]))
    return items


def explain(
    evidence: dict[str, ServiceEvidence],
    scores: dict[str, float],
    placement: Placement,
    impact: dict[str, tuple[float, Excess]],
    options: EngineOptions,
) -> list[Suspect]:
    """The suspects, most likely root cause first."""
    opts = options.explain
    suspects: list[Suspect] = []
    for service, ev in evidence.items():
        fault = classify(
            kind_evidence(ev, opts.code_path_falls),
            ordering=opts.fault_ordering,
            shape=opts.fault_shape,
            resource_tie_seconds=EARLY_SECONDS if opts.resource_tie else 0.0,
        )
        suspects.append(
            Suspect(
                service=service,
                score=round(scores[service], 4),
                fault_type=fault,
                evidence=_items(service, ev, placement, impact),
            )
        )
    suspects.sort(key=lambda s: (-s.score, s.service))
    return suspects

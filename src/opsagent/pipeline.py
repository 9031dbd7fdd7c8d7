"""``investigate()``: the one place that wires the stages, evidence → ranking → reasoning → gate.

The webhook, the chat endpoint, the CLI and the evaluation harness all call it; none has a copy.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from opsagent.analysis.engine import rank_suspects
from opsagent.autonomy import untrusted
from opsagent.autonomy.bounds import first_pass
from opsagent.autonomy.catalog import ActionCatalog, labels_for
from opsagent.config import Settings
from opsagent.domain import (
    ActionTarget,
    AutonomyLevel,
    Decision,
    EvidenceBundle,
    EvidenceGap,
    EvidenceSummary,
    FaultType,
    Findings,
    Incident,
    Investigation,
    MetricSeries,
    ProposedAction,
    RunbookMatch,
    SignalKind,
    Suspect,
    TimeWindow,
)
from opsagent.errors import ActionValidationError, SourceError
from opsagent.evidence.base import EvidenceSource, QueryableSource, collect
from opsagent.evidence.coverage import after_quiet
from opsagent.evidence.coverage import complete as complete_evidence
from opsagent.evidence.runbook_index import evidence_query
from opsagent.reasoning.base import Reasoner, Reasoning
from opsagent.reasoning.offline import OfflineReasoner, best_runbooks
from opsagent.reasoning.tools import RunbookSearchLike

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything ``investigate()`` needs, built once by the CLI, the API lifespan or the eval harness."""

    settings: Settings
    sources: list[EvidenceSource]
    catalog: ActionCatalog
    reasoner: Reasoner = field(default_factory=OfflineReasoner)
    runbooks: RunbookSearchLike | None = None
    # Condense the logs into templates for the report and the LLM (Drain3 costs seconds on large
    # windows: the evaluation harness turns it off when neither needs it).
    summarize_logs: bool = True

    def with_sources(self, sources: list[EvidenceSource]) -> Services:
        return replace(self, sources=sources)


def _refine_runbooks(
    bundle: EvidenceBundle, suspects: list[Suspect], search: RunbookSearchLike | None
) -> None:
    """Re-rank runbooks with what the engine found, not only what the alert said.

    Several runbooks often cover the same alert (HighErrorRate: a bad deploy, an exhausted pool, …);
    the top suspect's evidence ("db_connections_in_use rose to 20") is what tells them apart. Each
    runbook's score becomes its alert-based score plus its similarity to the evidence
    (``evidence_query``: the evidence's words without the numbers and placeholders that vary).
    """
    if search is None or not suspects or not suspects[0].evidence:
        return
    top = suspects[0]
    query = evidence_query(top.fault_type.value, top.service, [e.summary for e in top.evidence[:4]])
    try:
        by_evidence = search.search(query, services=[top.service], k=10)
    except SourceError as exc:
        bundle.gaps.append(EvidenceGap(source="runbooks", reason=str(exc)))
        return
    # With neither an alert nor a question, what the first search read was the incident's title (a
    # recording's "Recorded Sock Shop incident"): a match on it is rank-normalised noise, which summed
    # with the evidence's outranked the runbook the evidence fits. What the engine found ranks alone.
    said = bool(bundle.incident.alerts or bundle.incident.question)
    merged: dict[str, RunbookMatch] = {r.id: r for r in bundle.runbooks} if said else {}
    for match in by_evidence:
        known = merged.get(match.id)
        if known is None:
            merged[match.id] = match.model_copy(update={"reason": f"fits the evidence ({match.score:.2f})"})
        else:
            merged[match.id] = known.model_copy(
                update={
                    "score": round(known.score + match.score, 4),
                    "reason": f"{known.reason}; fits the evidence ({match.score:.2f})",
                }
            )
    # Cut to size in the order the findings will offer them, so that a runbook for the suspected fault
    # is not cut behind several that one alert name matched (HighErrorRate covers four).
    keep = max(5, len(bundle.runbooks))
    bundle.runbooks = best_runbooks(list(merged.values()), top.fault_type.value)[:keep]


def _run_runbook_queries(bundle: EvidenceBundle, sources: list[EvidenceSource]) -> None:
    """Run the PromQL the matched runbooks declare, so their diagnosis steps arrive as evidence."""
    queries: dict[str, str] = {}
    for book in bundle.runbooks:
        for query in book.queries:
            queries.setdefault(query.name, query.promql)
    have = {m.signal for m in bundle.metrics}
    queries = {name: promql for name, promql in queries.items() if name not in have}
    if not queries:
        return
    for source in sources:
        if not isinstance(source, QueryableSource):
            continue
        try:
            part = source.run_queries(bundle.incident, queries)
        except SourceError as exc:
            bundle.gaps.append(EvidenceGap(source=source.name, reason=f"runbook queries: {exc}"))
            continue
        bundle.metrics.extend(part.metrics)
        bundle.gaps.extend(part.gaps)


def propose_from_runbook(
    findings: Findings,
    ranked: list[RunbookMatch],
    catalog: ActionCatalog,
    namespace: str | None,
    alert_labels: list[dict[str, str]] | None = None,
) -> tuple[list[ProposedAction], list[str]]:
    """The actions the best-fitting runbook (the first of ``ranked``, ``best_runbooks``' order for
    the top root cause) lists, aimed at the top root cause.

    Parameters come from the target, from the labels of alerts about it, and from schema defaults;
    an action whose required parameters none of these give is still proposed, with
    ``missing_params``, for a person to complete when approving (it cannot run before that).
    """
    if not findings.root_causes or not ranked:
        return [], []
    cause = findings.root_causes[0]
    book = ranked[0]
    target = ActionTarget(service=cause.service, namespace=namespace)
    labels = labels_for(target, alert_labels or [])
    proposed: list[ProposedAction] = []
    notes: list[str] = []
    for spec in book.actions:
        try:
            params = catalog.default_params(spec.id, target, labels)
            action = catalog.propose_partial(
                spec.id, target, params, reason=f"listed by runbook {book.id}", runbook_id=book.id
            )
        except ActionValidationError as exc:
            notes.append(f"not proposed: {exc}")
            continue
        proposed.append(action)
        if action.missing_params:
            notes.append(f"{spec.id} needs parameters: {', '.join(action.missing_params)}")
    return proposed, notes


def _validated(
    actions: list[ProposedAction], catalog: ActionCatalog
) -> tuple[list[ProposedAction], list[str]]:
    """Re-validate proposals (an LLM's included) against the catalogue; drop what fails."""
    kept: list[ProposedAction] = []
    notes: list[str] = []
    for action in actions:
        try:
            kept.append(catalog.recheck(action))
        except ActionValidationError as exc:
            notes.append(f"rejected proposal: {exc}")
    return kept, notes


def _runbook_bodies(bundle: EvidenceBundle, services: Services) -> dict[str, str]:
    """The text of the matched runbooks, where the index holds it (scanned for instructions)."""
    books = getattr(services.runbooks, "runbooks", None)
    if not isinstance(books, dict):
        return {}
    return {m.id: books[m.id].body for m in bundle.runbooks if m.id in books}


def _summarize_logs(bundle: EvidenceBundle, suspects: list[Suspect]) -> None:
    """The log templates the report and the LLM read; a failure is a gap, not a failed investigation."""
    from opsagent.analysis.log_summary import summarize_logs

    try:
        bundle.log_summary = summarize_logs(bundle, suspects)
    except Exception as exc:  # Drain3 on arbitrary text: never worth losing the investigation over
        log.exception("log condensation failed")
        bundle.gaps.append(
            EvidenceGap(source="logs", reason=f"log templates unavailable ({type(exc).__name__})")
        )


def with_reference_offset(
    incident: Incident, offset_hours: float | None
) -> tuple[Incident, EvidenceGap | None]:
    """The incident with a reference period: its own if it has one, else its window ``offset_hours`` earlier.

    The shifted window must end before the incident began (its alert time, or the window's start
    without one): a shorter offset would compare the incident with itself, so it is not used and
    the returned gap says why.
    """
    if incident.reference is not None or offset_hours is None:
        return incident, None
    shift = timedelta(hours=offset_hours)
    reference = TimeWindow(start=incident.window.start - shift, end=incident.window.end - shift)
    began = incident.alert_time or incident.window.start
    if reference.end > began:
        reason = (
            f"not used: the window {offset_hours:g} h earlier reaches into the incident "
            f"(an offset of at least {(incident.window.end - began).total_seconds() / 3600:.3g} h is needed)"
        )
        return incident, EvidenceGap(source="reference period", reason=reason)
    return incident.model_copy(update={"reference": reference}), None


def evidence_sources(sources: list[EvidenceSource]) -> list[str]:
    """The names of the sources that read the monitored system (the runbook library is not one)."""
    return [s.name for s in sources if s.name != "runbooks"]


L0_NOTE = "L0: analysed because a person asked; no investigation starts on its own and no action is proposed."
NO_SOURCES = (
    "no evidence source is configured: set OPSAGENT_PROMETHEUS__URL (metrics), OPSAGENT_LOKI__URL or "
    "OPSAGENT_LOGS_DIR (logs); only the alert and the runbooks were read"
)

# Series kept with an investigation for its charts: enough for the top causes, and thinned so a
# stored investigation stays small.
CHARTED_SERIES = 12
CHART_POINTS = 240


# For a root cause that cites no metric (its evidence is traces or logs), the service's own series of
# the kinds its fault type moves are kept instead, so its page still shows what the metrics did.
_CONTEXT_KINDS: dict[FaultType, tuple[SignalKind, ...]] = {
    FaultType.ERRORS_CODE: (SignalKind.ERRORS, SignalKind.LATENCY),
    FaultType.LATENCY_NETWORK: (SignalKind.LATENCY, SignalKind.NETWORK),
    FaultType.CPU: (SignalKind.CPU, SignalKind.LATENCY),
    FaultType.MEMORY: (SignalKind.MEMORY, SignalKind.RESTARTS),
    FaultType.UNAVAILABLE: (SignalKind.UP, SignalKind.RESTARTS, SignalKind.ERRORS),
}
_ANY_KINDS = (SignalKind.ERRORS, SignalKind.LATENCY, SignalKind.CPU, SignalKind.MEMORY)


def _thinned(series: MetricSeries) -> MetricSeries:
    pairs = [
        (t, v)
        for t, v in zip(series.timestamps, series.values, strict=False)
        if math.isfinite(t) and math.isfinite(v)
    ]
    pairs = pairs[:: max(1, math.ceil(len(pairs) / CHART_POINTS))]
    return series.model_copy(update={"timestamps": [t for t, _ in pairs], "values": [v for _, v in pairs]})


def cited_series(metrics: list[MetricSeries], findings: Findings) -> list[MetricSeries]:
    """The metric series the root causes cite (for one that cites none, its service's series of the
    kinds its fault type moves), finite points only, at most ``CHART_POINTS`` each."""
    by_id = {m.id: m for m in metrics}
    kept: dict[str, MetricSeries] = {}
    for rc in findings.root_causes[:3]:
        cited = [by_id[e.id] for e in rc.evidence if e.id in by_id]
        if not cited:
            kinds = _CONTEXT_KINDS.get(rc.fault_type, _ANY_KINDS)
            own = [m for m in metrics if m.service == rc.service and not m.is_call_edge and m.kind in kinds]
            cited = sorted(own, key=lambda m: kinds.index(m.kind))[:2]
        for series in cited:
            if len(kept) >= CHARTED_SERIES:
                return list(kept.values())
            kept.setdefault(series.id, _thinned(series))
    return list(kept.values())


def investigate(incident: Incident, services: Services) -> Investigation:
    """Run the whole pipeline for one incident. Failing sources become gaps; it does not raise on them."""
    started = time.perf_counter()
    settings = services.settings
    level = settings.autonomy_level
    incident, quiet_gap = after_quiet(incident, settings.normal_period)
    incident, reference_gap = with_reference_offset(incident, settings.reference_offset_hours)
    bundle = collect(incident, services.sources, timeout_seconds=settings.source_timeout_seconds)
    if not evidence_sources(services.sources):
        # Without this, "no clear root cause" with no gap reads as "nothing is wrong".
        bundle.gaps.append(EvidenceGap(source="evidence sources", reason=NO_SOURCES))
    if reference_gap is not None:
        bundle.gaps.append(reference_gap)
    if quiet_gap is not None:
        bundle.gaps.append(quiet_gap)
    _run_runbook_queries(bundle, services.sources)
    complete_evidence(bundle, settings.topology, settings.normal_period)
    summary = EvidenceSummary(
        metrics=len(bundle.metrics),
        log_lines=len(bundle.logs),
        spans=len(bundle.spans),
        services=len(bundle.services),
        edges=len(bundle.topology.edges),
        runbooks=len(bundle.runbooks),
    )
    suspects = rank_suspects(bundle)
    _refine_runbooks(bundle, suspects, services.runbooks)
    summary.runbooks = len(bundle.runbooks)
    if services.summarize_logs and bundle.logs:
        _summarize_logs(bundle, suspects)
    reasoning: Reasoning = services.reasoner.reason(bundle, suspects)
    findings = reasoning.findings
    # The order the findings offer the runbooks in, for the top root cause's type (marking untrusted
    # text below changes evidence only, not the causes).
    top_fault = findings.root_causes[0].fault_type.value if findings.root_causes else None
    ranked = best_runbooks(bundle.runbooks, top_fault)
    actions, notes = _validated(findings.actions, services.catalog)
    if not actions:
        actions, more = propose_from_runbook(
            findings,
            ranked,
            services.catalog,
            incident.namespace,
            [a.labels for a in incident.alerts],
        )
        notes.extend(more)
    if level is AutonomyLevel.L0:
        # At L0 nothing is investigated automatically: this run is one a person asked for (API, chat,
        # CLI), so it is analysed in full; the gate still proposes no action at this level.
        notes.append(L0_NOTE)
    # Which firing of its alert group this is (a new incident, or an episode of a reopened one) and why.
    episode = [incident.episode_note] if incident.episode_note else []
    findings = findings.model_copy(update={"actions": actions, "notes": [*episode, *findings.notes, *notes]})
    # Outside text that reads as instructions is flagged, and no action rests on it (autonomy.untrusted).
    findings = untrusted.mark(findings, untrusted.scan(incident, bundle, _runbook_bodies(bundle, services)))
    confidence = findings.root_causes[0].confidence if findings.root_causes else 0.0
    decisions: list[Decision] = first_pass(
        findings, ranked, level, settings.autonomy, confidence, namespace=incident.namespace
    )
    return Investigation(
        incident=incident,
        autonomy_level=level,
        findings=findings,
        suspects=suspects,
        runbooks=ranked,
        decisions=decisions,
        gaps=bundle.gaps,
        evidence=summary,
        log_summary=bundle.log_summary,
        series=cited_series(bundle.metrics, findings),
        trace=reasoning.trace,
        seconds=round(time.perf_counter() - started, 4),
    )

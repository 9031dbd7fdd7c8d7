"""The ``EvidenceSource`` protocol and ``collect()``, which runs sources concurrently.

Live sources (Prometheus, Loki, files) and replayed recordings implement the same protocol, so an
evaluation exercises the same code path as a live incident. A source that fails or times out
becomes an ``EvidenceGap``; it never stops the investigation.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from opsagent.domain import (
    EvidenceBundle,
    EvidenceGap,
    Incident,
    LogRecord,
    MetricSeries,
    RunbookMatch,
    Span,
    Topology,
)
from opsagent.errors import SourceError

log = logging.getLogger(__name__)


@dataclass
class Collected:
    """What one source contributed."""

    metrics: list[MetricSeries] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    topology: Topology | None = None
    runbooks: list[RunbookMatch] = field(default_factory=list)
    gaps: list[EvidenceGap] = field(default_factory=list)


@runtime_checkable
class EvidenceSource(Protocol):
    """A source of evidence for an incident. ``collect`` may raise ``SourceError``."""

    name: str

    def collect(self, incident: Incident) -> Collected: ...


@runtime_checkable
class QueryableSource(Protocol):
    """A source that can also run named queries it is handed (those a runbook declares)."""

    name: str

    def run_queries(self, incident: Incident, queries: dict[str, str]) -> Collected: ...


def _merge_topology(into: Topology, extra: Topology) -> Topology:
    services = list(dict.fromkeys([*into.services, *extra.services]))
    edges = list(dict.fromkeys([*into.edges, *extra.edges]))
    return Topology(services=services, edges=edges)


# Sources whose records are compared with a reference period (``Incident.reference``): events are
# counted against it; metrics keep their own in-window baseline (their onset detection needs one).
REFERENCE_SOURCES = ("logs", "traces")


def _reference_incident(incident: Incident) -> Incident | None:
    if incident.reference is None:
        return None
    return incident.model_copy(update={"window": incident.reference, "reference": None})


def collect(
    incident: Incident,
    sources: list[EvidenceSource],
    *,
    timeout_seconds: float = 20.0,
    executor: futures.Executor | None = None,
) -> EvidenceBundle:
    """Run every source concurrently, each bounded by ``timeout_seconds``; merge into one bundle.

    With a reference period on the incident, the log and trace sources also run over it (at the
    same time); what they return fills ``reference_logs`` / ``reference_spans``.
    """
    bundle = EvidenceBundle(incident=incident)
    if not sources:
        return bundle
    reference = _reference_incident(incident)
    jobs: list[tuple[EvidenceSource, Incident, bool]] = [(src, incident, False) for src in sources]
    if reference is not None:
        jobs += [(src, reference, True) for src in sources if src.name in REFERENCE_SOURCES]
    own_pool = executor is None
    pool = executor or futures.ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="evidence")
    try:
        pending = [(pool.submit(src.collect, inc), src, is_ref) for src, inc, is_ref in jobs]
        for future, src, is_ref in pending:
            name = f"{src.name} (reference period)" if is_ref else src.name
            try:
                part = future.result(timeout=timeout_seconds)
            except futures.TimeoutError:
                future.cancel()
                bundle.gaps.append(EvidenceGap(source=name, reason=f"timed out after {timeout_seconds:g}s"))
                continue
            except SourceError as exc:
                bundle.gaps.append(EvidenceGap(source=name, reason=str(exc)))
                continue
            except Exception as exc:  # a bug in one source must not sink the investigation
                log.exception("evidence source %s crashed", name)
                bundle.gaps.append(EvidenceGap(source=name, reason=f"internal error ({type(exc).__name__})"))
                continue
            if is_ref:
                bundle.reference_logs.extend(part.logs)
                bundle.reference_spans.extend(part.spans)
                bundle.gaps.extend(
                    g.model_copy(update={"source": f"{g.source} (reference period)"}) for g in part.gaps
                )
                continue
            bundle.metrics.extend(part.metrics)
            bundle.logs.extend(part.logs)
            bundle.spans.extend(part.spans)
            bundle.runbooks.extend(part.runbooks)
            bundle.gaps.extend(part.gaps)
            if part.topology is not None:
                bundle.topology = _merge_topology(bundle.topology, part.topology)
    finally:
        if own_pool:
            pool.shutdown(wait=False, cancel_futures=True)
    return bundle

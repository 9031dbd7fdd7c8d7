"""The LLM's tools and condensed context, over the same evidence the engine ranked.

Nothing here fetches evidence of its own: every tool reads the ``EvidenceBundle`` and the engine's
suspects handed to the reasoner, the runbook index and action catalogue it was built with, and —
only for ``query_metrics(promql=...)`` — the live Prometheus source when one is configured. The
seams are protocols so ``reasoning`` imports nothing above ``domain``/``errors``/``config``.

Results are plain JSON-able dicts, bounded in size: the model gets summaries, never raw dumps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, Field, JsonValue

from opsagent.domain import (
    ActionSpec,
    ActionTarget,
    EvidenceBundle,
    EvidenceItem,
    LogSummary,
    MetricSeries,
    ProposedAction,
    Risk,
    RunbookMatch,
    Suspect,
)
from opsagent.errors import ActionValidationError, OpsAgentError
from opsagent.reasoning.evidence_json import (
    MAX_EDGES,
    MAX_SERIES,
    TOP_RUNBOOKS,
    TOP_SUSPECTS,
    TOP_TEMPLATES,
    clip,
    runbook_json,
    series_summary,
    split_time,
    suspect_json,
    template_json,
)

log = logging.getLogger(__name__)


class ActionCatalogLike(Protocol):
    """What the tools need of ``autonomy.catalog.ActionCatalog``."""

    def get(self, action_id: str) -> ActionSpec: ...

    # A raw proposal proposed again through the catalogue, which sets its risk and checks it.
    def recheck(self, action: ProposedAction) -> ProposedAction: ...


class RunbookSearchLike(Protocol):
    """What the tools and the pipeline ask of the runbook index (``evidence.runbook_index.RunbookIndex``)."""

    def search(self, query: str, *, services: list[str] | None = None, k: int = 5) -> list[RunbookMatch]: ...


# (bundle, engine suspects, service or None) -> the logs condensed into templates within a budget
# (``analysis.log_summary.summarize_logs``, bound by the factory)
LogCondenser = Callable[[EvidenceBundle, Sequence[Suspect], str | None], LogSummary]
# (promql, start, end) -> series, against the live Prometheus; bounded by the source's own settings
PromQLRunner = Callable[[str, float, float], list[MetricSeries]]


@dataclass
class Toolbox:
    """The tools of one investigation, and what they accumulate (citable evidence, proposals)."""

    bundle: EvidenceBundle
    suspects: list[Suspect]
    catalog: ActionCatalogLike | None = None
    runbooks: RunbookSearchLike | None = None
    condense_logs: LogCondenser | None = None
    promql: PromQLRunner | None = None
    citable: dict[str, EvidenceItem] = field(default_factory=dict)
    proposals: list[ProposedAction] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _logs: LogSummary | None = None

    def __post_init__(self) -> None:
        for suspect in self.suspects:
            for item in suspect.evidence:
                self.citable.setdefault(item.id, item)

    @property
    def known_services(self) -> set[str]:
        return set(self.bundle.services) | {s.service for s in self.suspects}

    # --- condensed context for the first prompt -------------------------------------------------

    def logs(self, service: str | None = None) -> LogSummary | None:
        """The condensed logs: the pipeline's summary, else the bound condenser's.

        One service's logs are condensed afresh when a condenser is bound (a whole budget for that
        service), else filtered from the incident-wide summary.
        """
        if service is None:
            if self.bundle.log_summary is None and self._logs is None:
                self._logs = self._condense(None)
            return self.bundle.log_summary or self._logs
        if self.condense_logs is not None:
            return self._condense(service)
        whole = self.logs(None)
        if whole is None:
            return None
        rows = [t for t in whole.templates if t.service == service]
        return whole.model_copy(update={"templates": rows, "total_lines": self._lines(service)})

    def _condense(self, service: str | None) -> LogSummary | None:
        if self.condense_logs is None:
            return None
        try:
            return self.condense_logs(self.bundle, self.suspects, service)
        except Exception:  # the suspects' log evidence still carries the strongest templates
            log.exception("log condensation failed; templates left out")
            return None

    def _lines(self, service: str | None) -> int:
        return sum(1 for r in self.bundle.logs if service is None or r.service == service)

    def log_json(
        self, service: str | None = None, limit: int = TOP_TEMPLATES, *, changed_only: bool = False
    ) -> dict[str, JsonValue]:
        """Counts and the top templates (``changed_only``: new or increased ones) with one example."""
        found = self.logs(service)
        if found is None:
            return {"log_lines": self._lines(service), "templates": []}
        rows = [t for t in found.templates if not changed_only or t.change != "steady"]
        out: dict[str, JsonValue] = {
            "log_lines": found.total_lines,
            "template_count": found.template_count,
            "templates": [template_json(t) for t in rows[:limit]],
        }
        if found.sampled_lines:
            out["sampled_lines"] = found.sampled_lines
        return out

    def context(self) -> dict[str, JsonValue]:
        """What the first prompt quotes: top suspects, templates, topology, runbooks, gaps."""
        inc = self.bundle.incident
        alerts: list[JsonValue] = [
            {
                "name": a.name,
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": {k: clip(v) for k, v in a.annotations.items()},
                "starts_at": a.starts_at.isoformat(),
            }
            for a in inc.alerts[:5]
        ]
        incident: dict[str, JsonValue] = {
            "id": inc.id,
            "title": clip(inc.title),
            "window": {"start": inc.window.start.isoformat(), "end": inc.window.end.isoformat()},
            "alert_time": inc.alert_time.isoformat() if inc.alert_time else None,
            "namespace": inc.namespace,
            "alerts": alerts,
            "question": clip(inc.question, 1000) if inc.question else None,
            "services_with_evidence": list(self.bundle.services),
        }
        return {
            "incident": incident,
            "suspects": [suspect_json(s) for s in self.suspects[:TOP_SUSPECTS]],
            "logs": self.log_json(changed_only=True),
            "topology": [f"{e.caller} -> {e.callee}" for e in self.bundle.topology.edges[:MAX_EDGES]],
            "runbooks": [runbook_json(b) for b in self.bundle.runbooks[:TOP_RUNBOOKS]],
            "gaps": [{"source": g.source, "reason": clip(g.reason)} for g in self.bundle.gaps],
        }

    # --- tools ------------------------------------------------------------------------------------

    def get_suspects(self, top: int = TOP_SUSPECTS) -> dict[str, JsonValue]:
        top = max(1, min(top, 10))
        return {
            "suspects": [suspect_json(s) for s in self.suspects[:top]],
            "ranking": [s.service for s in self.suspects],
        }

    def query_metrics(
        self, service: str | None = None, signal: str | None = None, promql: str | None = None
    ) -> dict[str, JsonValue]:
        cut = split_time(self.bundle)
        if promql:
            if self.promql is None:
                return {"error": "no live Prometheus is configured; omit promql to read the recorded series"}
            inc = self.bundle.incident
            try:
                found = self.promql(promql, inc.window.start_s, inc.window.end_s)
            except OpsAgentError as exc:
                return {"error": clip(str(exc), 400)}
            source = "prometheus"
        else:
            if service is None:
                return {"error": "give a service (or a promql query)"}
            found = [
                m
                for m in self.bundle.metrics
                if m.service == service and (signal is None or m.signal == signal)
            ]
            source = "recorded"
            if not found:
                names = sorted({m.signal for m in self.bundle.metrics if m.service == service})
                signals: list[JsonValue] = [*names]
                return {"error": f"no series for service={service!r} signal={signal!r}", "signals": signals}
        rows = [series_summary(m, cut) for m in found[:MAX_SERIES]]
        for row, series in zip(rows, found, strict=False):
            self._cite_series(series, row)
        return {"source": source, "series": list(rows), "truncated": len(found) > MAX_SERIES}

    def _cite_series(self, series: MetricSeries, row: dict[str, JsonValue]) -> None:
        if series.id in self.citable:
            return
        base, peak = row.get("baseline"), row.get("peak")
        if isinstance(base, float) and isinstance(peak, float):
            summary = f"{series.signal}: baseline {base:g}, peak {peak:g} during the incident"
            self.citable[series.id] = EvidenceItem(
                id=series.id,
                kind="metric",
                service=series.service,
                signal=series.signal,
                summary=summary,
                baseline=base,
                peak=peak,
            )

    def query_logs(self, service: str | None = None, limit: int = TOP_TEMPLATES) -> dict[str, JsonValue]:
        return self.log_json(service, max(1, min(limit, 30)))

    def search_runbooks(self, query: str) -> dict[str, JsonValue]:
        books: list[RunbookMatch]
        if self.runbooks is not None:
            try:
                books = self.runbooks.search(query, k=TOP_RUNBOOKS)
            except OpsAgentError as exc:
                return {"error": clip(str(exc), 400)}
        else:
            words = {w.lower() for w in query.split() if len(w) > 2}
            books = [
                b
                for b in self.bundle.runbooks
                if words & set(f"{b.title} {' '.join(b.fault_types)}".lower().split())
            ] or self.bundle.runbooks[:TOP_RUNBOOKS]
        return {"runbooks": [runbook_json(b, steps=6) for b in books[:TOP_RUNBOOKS]]}

    def get_topology(self, service: str | None = None) -> dict[str, JsonValue]:
        topo = self.bundle.topology
        if service is None:
            return {"edges": [f"{e.caller} -> {e.callee}" for e in topo.edges[:MAX_EDGES]]}
        calls: list[JsonValue] = list(topo.callees(service))
        called_by: list[JsonValue] = list(topo.callers(service))
        return {"service": service, "calls": calls, "called_by": called_by}

    def propose_action(
        self,
        action_id: str,
        service: str,
        params: dict[str, JsonValue] | None = None,
        namespace: str | None = None,
        reason: str = "",
    ) -> dict[str, JsonValue]:
        try:
            proposal = self.validate_proposal(action_id, service, params or {}, namespace, reason)
        except ActionValidationError as exc:
            return {"accepted": False, "error": str(exc)}
        self.proposals.append(proposal)
        return {"accepted": True, "action_id": proposal.action_id, "risk": proposal.risk.value}

    def validate_proposal(
        self,
        action_id: str,
        service: str,
        params: dict[str, JsonValue],
        namespace: str | None,
        reason: str,
    ) -> ProposedAction:
        """A catalogued action with schema-valid parameters, aimed at a service in the evidence."""
        if self.catalog is None:
            raise ActionValidationError("no action catalogue: actions cannot be proposed")
        if service not in self.known_services:
            raise ActionValidationError(f"service {service!r} does not appear in the evidence")
        runbook_id = next(
            (b.id for b in self.bundle.runbooks if any(a.id == action_id for a in b.actions)), None
        )
        raw = ProposedAction(
            action_id=action_id,
            risk=Risk.HIGH,  # until the catalogue says: the model's word on risk counts for nothing
            target=ActionTarget(service=service, namespace=namespace or self.bundle.incident.namespace),
            params=params,
            reason=clip(reason, 500),
            runbook_id=runbook_id,
        )
        return self.catalog.recheck(raw)


class SuspectsArgs(BaseModel):
    top: int = Field(default=TOP_SUSPECTS, ge=1, le=10)


class MetricsArgs(BaseModel):
    service: str | None = None
    signal: str | None = None
    promql: str | None = None


class LogsArgs(BaseModel):
    service: str | None = None
    limit: int = Field(default=TOP_TEMPLATES, ge=1, le=30)


class RunbookArgs(BaseModel):
    query: str


class TopologyArgs(BaseModel):
    service: str | None = None


class ProposeArgs(BaseModel):
    action_id: str
    service: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    namespace: str | None = None
    reason: str = ""


TOOL_ARGS: dict[str, type[BaseModel]] = {
    "get_suspects": SuspectsArgs,
    "query_metrics": MetricsArgs,
    "query_logs": LogsArgs,
    "search_runbooks": RunbookArgs,
    "get_topology": TopologyArgs,
    "propose_action": ProposeArgs,
}


def run_tool(box: Toolbox, name: str, args: dict[str, object]) -> str:
    """Run one tool by name; the result (or the error) as compact JSON for the model."""
    box.calls.append(name)
    schema = TOOL_ARGS.get(name)
    if schema is None:
        return json.dumps({"error": f"unknown tool {name!r}"})
    parsed = schema.model_validate(args).model_dump()
    result: dict[str, JsonValue] = getattr(box, name)(**parsed)
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)

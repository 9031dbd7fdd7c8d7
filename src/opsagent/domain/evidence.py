"""Evidence gathered for an incident: series, log records, spans, topology, runbooks, gaps."""

from __future__ import annotations

from enum import StrEnum
from operator import attrgetter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsagent.domain.actions import ActionSpec
from opsagent.domain.incident import Incident
from opsagent.domain.runbook import RunbookQuery

SourceName = Literal["metrics", "logs", "traces", "topology", "runbooks"]


class SignalKind(StrEnum):
    """What a metric measures; scoring normalises per kind, fault typing reads which kinds moved."""

    CPU = "cpu"
    MEMORY = "memory"
    LATENCY = "latency"
    ERRORS = "errors"
    TRAFFIC = "traffic"
    SATURATION = "saturation"
    RESTARTS = "restarts"
    DISK = "disk"
    NETWORK = "network"
    # target health as Prometheus records it: 1 while a target is scraped, 0 while it is down
    UP = "up"
    OTHER = "other"


class MetricSeries(BaseModel):
    """One time series: a signal of a service, timestamps in epoch seconds, ascending."""

    model_config = ConfigDict(frozen=True)

    service: str
    signal: str
    kind: SignalKind
    unit: str = ""
    timestamps: list[float]
    values: list[float]
    # A call-edge series (a mesh's request rate or latency per source and destination): the service
    # ``service`` calls. A sample without calls on the edge reads 0 (a rate) or has no value (NaN).
    peer: str | None = None

    @property
    def is_call_edge(self) -> bool:
        """A call edge's series (read for silent edges only), not a metric of ``service`` itself."""
        return self.peer is not None

    @property
    def id(self) -> str:
        edge = f"->{self.peer}" if self.is_call_edge else ""
        return f"metric:{self.service}{edge}:{self.signal}"


class LogRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    timestamp: float
    service: str
    level: str = "info"
    message: str
    # The trace and span the line was written in, where the logger records them (trace-linked logs):
    # they tie an error line to the call that raised it.
    trace_id: str | None = None
    span_id: str | None = None


class Span(BaseModel):
    model_config = ConfigDict(frozen=True)

    trace_id: str
    span_id: str
    parent_id: str | None = None
    service: str
    operation: str = ""
    start: float
    duration_ms: float
    error: bool = False


class Edge(BaseModel):
    model_config = ConfigDict(frozen=True)

    caller: str
    callee: str


class Topology(BaseModel):
    """The call graph: who calls whom. Faults propagate from callee to caller."""

    services: list[str] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)

    def callees(self, service: str) -> list[str]:
        return [e.callee for e in self.edges if e.caller == service]

    def callers(self, service: str) -> list[str]:
        return [e.caller for e in self.edges if e.callee == service]


class RunbookMatch(BaseModel):
    """A runbook retrieved for an incident, with why it matched."""

    id: str
    title: str
    score: float
    reason: str = ""
    path: str = ""
    remediation: list[str] = Field(default_factory=list)
    actions: list[ActionSpec] = Field(default_factory=list)
    fault_types: list[str] = Field(default_factory=list)
    queries: list[RunbookQuery] = Field(default_factory=list)


class EvidenceGap(BaseModel):
    """Evidence that could not be collected, and why; reports print it, reasoners account for it."""

    source: str
    reason: str


LogChange = Literal["new", "increased", "steady"]


class LogTemplateSummary(BaseModel):
    """One condensed log template of a service, counted before and during the incident."""

    service: str
    template: str
    normal_count: int = 0
    incident_count: int = 0
    error: bool = False
    change: LogChange = "steady"
    examples: list[str] = Field(default_factory=list)


class LogSummary(BaseModel):
    """The logs condensed into templates within a size budget (what reaches a report or an LLM)."""

    total_lines: int = 0
    template_count: int = 0
    omitted: int = 0
    split: float | None = None
    sampled_lines: int | None = None
    templates: list[LogTemplateSummary] = Field(default_factory=list)


class EvidenceBundle(BaseModel):
    """Everything collected for one incident; the only input of a reasoner."""

    incident: Incident
    metrics: list[MetricSeries] = Field(default_factory=list)
    logs: list[LogRecord] = Field(default_factory=list)
    spans: list[Span] = Field(default_factory=list)
    topology: Topology = Field(default_factory=Topology)
    runbooks: list[RunbookMatch] = Field(default_factory=list)
    gaps: list[EvidenceGap] = Field(default_factory=list)
    # Logs and spans of ``incident.reference`` (a known-normal period), collected by the same sources.
    reference_logs: list[LogRecord] = Field(default_factory=list)
    reference_spans: list[Span] = Field(default_factory=list)
    # Condensed once by the pipeline after ranking; the LLM's prompt and the report both read it.
    log_summary: LogSummary | None = None

    @property
    def services(self) -> list[str]:
        """Every service any piece of evidence names, sorted."""
        names = {m.service for m in self.metrics} | set(self.topology.services)
        names |= {e.caller for e in self.topology.edges} | {e.callee for e in self.topology.edges}
        # mapped rather than a comprehension: an incident holds tens of thousands of lines and spans
        names |= set(map(_service, self.logs)) | set(map(_service, self.spans))
        return sorted(names)


_service = attrgetter("service")

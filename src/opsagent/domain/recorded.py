"""A recorded incident: an incident with its evidence captured, and the ground truth if known."""

from __future__ import annotations

from pydantic import BaseModel, Field

from opsagent.domain.evidence import LogRecord, MetricSeries, Span, Topology
from opsagent.domain.findings import FaultType
from opsagent.domain.incident import Incident


class GroundTruth(BaseModel):
    service: str
    fault_type: FaultType | None = None
    fault_label: str | None = None
    runbook: str | None = None
    actions: list[str] = Field(default_factory=list)


class RecordedIncident(BaseModel):
    dataset: str
    incident: Incident
    metrics: list[MetricSeries] = Field(default_factory=list)
    logs: list[LogRecord] = Field(default_factory=list)
    spans: list[Span] = Field(default_factory=list)
    topology: Topology = Field(default_factory=Topology)
    truth: GroundTruth | None = None
    source_path: str = ""
    # How the dataset names the case (e.g. ``carts-cpu/1``); reports use it. Unlike
    # ``incident.id`` it may reveal the answer, so it never reaches a reasoner.
    case_id: str = ""

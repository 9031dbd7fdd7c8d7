"""What a reasoner concludes: ranked root causes with the evidence they rest on."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from opsagent.domain.actions import ProposedAction


class FaultType(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    LATENCY_NETWORK = "latency-network"
    ERRORS_CODE = "errors-code"
    # the service does not answer: target down (up == 0), connections refused, restarts
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


EvidenceKind = Literal["metric", "log", "trace", "topology", "runbook"]


class EvidenceItem(BaseModel):
    """One citable piece of evidence; ``id`` is what an LLM cites."""

    id: str
    kind: EvidenceKind
    service: str
    summary: str
    signal: str | None = None
    baseline: float | None = None
    peak: float | None = None
    onset: float | None = None
    score: float = 0.0
    # The item's text reads as instructions to an agent (see ``UntrustedText``): shown, never acted on.
    untrusted: bool = False


class Suspect(BaseModel):
    """A service ranked by the statistical engine, with what made it rank."""

    service: str
    score: float
    fault_type: FaultType = FaultType.UNKNOWN
    evidence: list[EvidenceItem] = Field(default_factory=list)


class RootCause(BaseModel):
    service: str
    fault_type: FaultType = FaultType.UNKNOWN
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = ""
    evidence: list[EvidenceItem] = Field(default_factory=list)


UntrustedSource = Literal["log", "alert", "runbook", "chat", "evidence"]


class UntrustedText(BaseModel):
    """Text from outside (a log line, an alert annotation, a runbook body, a chat message) that reads
    as instructions to an agent. It is reported as a warning and is never a reason to act."""

    source: UntrustedSource
    where: str
    excerpt: str
    why: str


class Findings(BaseModel):
    """The output of any reasoner: the same shape whether it came from the engine or an LLM."""

    reasoner: str
    root_causes: list[RootCause] = Field(default_factory=list)
    ranking: list[str] = Field(default_factory=list)
    remediation: list[str] = Field(default_factory=list)
    actions: list[ProposedAction] = Field(default_factory=list)
    summary: str = ""
    notes: list[str] = Field(default_factory=list)
    untrusted: list[UntrustedText] = Field(default_factory=list)

"""The result of one run of the pipeline."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from opsagent.domain.actions import AutonomyLevel, Decision
from opsagent.domain.evidence import EvidenceGap, LogSummary, MetricSeries, RunbookMatch
from opsagent.domain.findings import Findings, Suspect
from opsagent.domain.incident import Incident


class PromptRecord(BaseModel):
    name: str
    version: str
    sha256: str


class ReasonerTrace(BaseModel):
    """How the findings were produced: which reasoner, prompts, model, tokens, time."""

    reasoner: str
    model: str | None = None
    prompts: list[PromptRecord] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    steps: int = 0
    seconds: float = 0.0
    fell_back: bool = False
    # Why the reasoner fell back to the offline engine (safe to show), when it did.
    fallback_reason: str | None = None
    notes: list[str] = Field(default_factory=list)


class EvidenceSummary(BaseModel):
    metrics: int = 0
    log_lines: int = 0
    spans: int = 0
    services: int = 0
    edges: int = 0
    runbooks: int = 0


class Investigation(BaseModel):
    incident: Incident
    autonomy_level: AutonomyLevel
    findings: Findings
    suspects: list[Suspect] = Field(default_factory=list)
    runbooks: list[RunbookMatch] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    gaps: list[EvidenceGap] = Field(default_factory=list)
    evidence: EvidenceSummary = Field(default_factory=EvidenceSummary)
    log_summary: LogSummary | None = None
    # The metric series the root causes cite (finite points only), kept so a report can chart them.
    series: list[MetricSeries] = Field(default_factory=list)
    trace: ReasonerTrace
    seconds: float = 0.0
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

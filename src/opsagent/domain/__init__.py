"""Pure domain models: no I/O, nothing of ours imported but other domain modules."""

from opsagent.domain.actions import (
    ActionSpec,
    ActionTarget,
    AutonomyLevel,
    Decision,
    DecisionOutcome,
    ExecutorKind,
    ProposedAction,
    Risk,
    VerifySpec,
)
from opsagent.domain.evidence import (
    Edge,
    EvidenceBundle,
    EvidenceGap,
    LogRecord,
    LogSummary,
    LogTemplateSummary,
    MetricSeries,
    RunbookMatch,
    SignalKind,
    Span,
    Topology,
)
from opsagent.domain.findings import EvidenceItem, FaultType, Findings, RootCause, Suspect
from opsagent.domain.incident import Alert, Incident, TimeWindow
from opsagent.domain.investigation import EvidenceSummary, Investigation, PromptRecord, ReasonerTrace
from opsagent.domain.recorded import GroundTruth, RecordedIncident
from opsagent.domain.runbook import Runbook, RunbookQuery

__all__ = [
    "ActionSpec",
    "ActionTarget",
    "Alert",
    "AutonomyLevel",
    "Decision",
    "DecisionOutcome",
    "Edge",
    "EvidenceBundle",
    "EvidenceGap",
    "EvidenceItem",
    "EvidenceSummary",
    "ExecutorKind",
    "FaultType",
    "Findings",
    "GroundTruth",
    "Incident",
    "Investigation",
    "LogRecord",
    "LogSummary",
    "LogTemplateSummary",
    "MetricSeries",
    "PromptRecord",
    "ProposedAction",
    "ReasonerTrace",
    "RecordedIncident",
    "Risk",
    "RootCause",
    "Runbook",
    "RunbookMatch",
    "RunbookQuery",
    "SignalKind",
    "Span",
    "Suspect",
    "TimeWindow",
    "Topology",
    "VerifySpec",
]

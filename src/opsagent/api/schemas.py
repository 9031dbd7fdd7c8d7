"""Request and response bodies of the API (the domain models are reused where they fit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from opsagent.config import ApiRole
from opsagent.domain import Decision, EvidenceGap, EvidenceSummary, Findings, RunbookMatch, Suspect
from opsagent.store.models import AlertRow, IncidentRow, InvestigationRow


class AlertsAccepted(BaseModel):
    """The webhook's answer once the alerts are stored."""

    incident_ids: list[str]
    investigation_ids: list[str] = Field(description="investigations queued by this delivery")
    accepted: int = Field(description="alerts stored for the first time")
    duplicates: int = Field(description="alerts already stored (same fingerprint and startsAt)")
    resolved: int = Field(description="stored alerts this delivery marked resolved")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "incident_ids": ["inc-3f1c2a9be07d4c55"],
                    "investigation_ids": ["9b2d4c0e6a8f4f0e9d1c2b3a4f5e6d7c"],
                    "accepted": 1,
                    "duplicates": 0,
                    "resolved": 0,
                }
            ]
        }
    )


class InvestigationOut(BaseModel):
    id: str
    incident_id: str
    status: Literal["queued", "running", "done", "failed"]
    trigger: str
    requested_by: str | None = None
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    autonomy_level: str | None = None
    reasoner: str | None = None
    top_service: str | None = None
    top_fault: str | None = None
    confidence: float | None = None
    seconds: float | None = None

    @classmethod
    def of(cls, row: InvestigationRow) -> InvestigationOut:
        return cls.model_validate(row, from_attributes=True)


class InvestigationQueued(BaseModel):
    investigation_id: str
    status: str
    created: bool = Field(description="false when an unfinished investigation already existed")


class IncidentOut(BaseModel):
    id: str
    title: str
    origin: str
    status: Literal["open", "resolved"]
    service: str | None = None
    namespace: str | None = None
    group_key: str | None = None
    window_start: datetime
    window_end: datetime
    # The current episode's first alert, and which firing of the alert group the episode is (1: the
    # first; more: the group fired again after it had resolved and reopened the incident).
    alert_time: datetime | None = None
    episode: int = 1
    # Why the current episode is a new incident or a reopened one (the reopen horizon), and the alert
    # group's previous incident when the group fired again beyond the horizon.
    episode_reason: str | None = None
    follows: str | None = None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None

    @classmethod
    def of(cls, row: IncidentRow) -> IncidentOut:
        return cls.model_validate(row, from_attributes=True)


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    total: int
    limit: int
    offset: int


class AlertOut(BaseModel):
    fingerprint: str
    name: str
    status: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""
    received_at: datetime

    @classmethod
    def of(cls, row: AlertRow) -> AlertOut:
        return cls.model_validate(row, from_attributes=True)


class TimelineEntry(BaseModel):
    """One line of an incident's timeline (alerts, investigations, actions); the autonomy audit log
    itself is ``domain.AuditEntry``."""

    at: datetime
    actor: str
    event: str
    detail: str = ""


class IncidentDetail(IncidentOut):
    alerts: list[AlertOut]
    evidence: EvidenceSummary | None = Field(None, description="of the latest finished investigation")
    findings: Findings | None = None
    suspects: list[Suspect] = Field(default_factory=list)
    runbooks: list[RunbookMatch] = Field(default_factory=list)
    gaps: list[EvidenceGap] = Field(default_factory=list)
    actions: list[Decision] = Field(default_factory=list, description="the autonomy gate's decisions")
    investigations: list[InvestigationOut]
    audit: list[TimelineEntry]


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "Why is checkout returning 5xx?", "incident_id": "inc-3f1c2a9be07d4c55"},
                {
                    "message": "And what should I do first?",
                    "conversation_id": "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
                },
            ]
        },
    )

    message: str = Field(min_length=1, max_length=20_000)
    conversation_id: str | None = Field(None, min_length=1, max_length=64)
    incident_id: str | None = Field(None, min_length=1, max_length=64)
    stream: bool = Field(True, description="Server-Sent Events (default) or one JSON answer")


class ChatEventOut(BaseModel):
    event: Literal["evidence", "tool_call", "text", "findings", "done", "error"]
    data: dict[str, JsonValue]


class ChatAnswer(BaseModel):
    conversation_id: str
    message: str = Field(description="the assistant's answer (the text events joined)")
    events: list[ChatEventOut]


class ChatMessageOut(BaseModel):
    seq: int
    role: str
    content: str
    created_at: datetime


class ConversationSummary(BaseModel):
    """One of ``GET /v1/conversations``: a conversation without its messages."""

    id: str
    incident_id: str | None
    user_name: str | None
    created_at: datetime
    updated_at: datetime


class ConversationOut(BaseModel):
    id: str
    incident_id: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[ChatMessageOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: ApiRole = "viewer"


class UserOut(BaseModel):
    name: str
    role: str
    disabled: bool
    created_at: datetime


class TokenIssued(BaseModel):
    name: str
    role: str
    token: str = Field(description="shown once; only its hash is stored")


class Me(BaseModel):
    name: str
    role: ApiRole


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)

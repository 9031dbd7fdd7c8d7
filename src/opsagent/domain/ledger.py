"""The autonomy ledger's records: action requests, audit entries, the kill switch and circuit-breaker resets.

They live in ``domain`` because both sides of the autonomy seam use them: ``autonomy/`` decides and
runs, ``store/`` persists (and may import only ``domain``, ``errors`` and ``config``). One
``AuditEntry`` for the whole project: the API's incident trail is a view of it, not a second model.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from opsagent.domain.actions import AutonomyLevel, ProposedAction

SYSTEM_ACTOR = "opsagent"


class ActionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    NOT_PROPOSED = "not_proposed"
    DENIED = "denied"
    BLOCKED = "blocked"
    DRY_RUN = "dry_run"
    RUNNING = "running"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class ActionRequest(BaseModel):
    """The ledger line for one proposed action, from the decision to its end."""

    id: str
    incident_id: str
    action: ProposedAction
    confidence: float
    level: AutonomyLevel
    status: ActionStatus
    reason: str
    automatic: bool = False
    created_at: datetime
    expires_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None


AuditKind = Literal[
    "decision",
    "execution_started",
    "execution_result",
    "approval",
    "rejection",
    "expiry",
    "blocked",
    "verification",
    "rollback",
    "escalation",
    "kill_switch",
    "notification",
    "breaker_reset",
]


class AuditEntry(BaseModel):
    """One line of the audit log. ``seq``, ``prev_hash`` and ``hash`` are set by the log on append."""

    kind: AuditKind
    reason: str
    actor: str = SYSTEM_ACTOR
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    incident_id: str | None = None
    request_id: str | None = None
    action_id: str | None = None
    service: str | None = None
    namespace: str | None = None
    level: str | None = None
    policy_version: str | None = None
    confidence: float | None = None
    outcome: str | None = None
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    seq: int | None = None
    prev_hash: str = ""
    hash: str = ""

    def chained_hash(self, prev_hash: str) -> str:
        """sha256 over the entry's content (not its seq or hashes) and the previous entry's hash."""
        body = self.model_dump(mode="json", exclude={"seq", "prev_hash", "hash"})
        blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256((prev_hash + blob).encode()).hexdigest()


class KillSwitchState(BaseModel):
    on: bool = False
    actor: str | None = None
    reason: str = ""
    changed_at: datetime | None = None


GLOBAL_SCOPE = "global"


class BreakerReset(BaseModel):
    """A person re-arming automatic actions after failures: for one incident, or globally.

    ``scope`` is ``"global"`` or an incident id. Failures that finished before ``at`` no longer hold
    that scope's breaker open.
    """

    scope: str
    at: datetime
    actor: str
    reason: str = ""

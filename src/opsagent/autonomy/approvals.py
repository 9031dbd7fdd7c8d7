"""Action requests and approvals: every action the runner handles becomes an ``ActionRequest``.

A request is the ledger line for one proposed action: pending approval (with an expiry), approved or
rejected (with actor, time and reason), running, finished. The same records feed the rate limits and
the blast-radius cap (``history_from()``). Approving only records a person's consent: the runner
re-checks the action against the policy before it runs (``ActionRunner.run_approved``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from opsagent.autonomy.audit import AuditEntry, AuditLog
from opsagent.autonomy.policy import ActionRecord, History
from opsagent.domain import AutonomyLevel, ProposedAction, Risk
from opsagent.errors import ConflictError, InputError, NotFoundError


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


# Statuses in which the action is changing the target (blast radius counts them as in flight).
IN_FLIGHT = frozenset({ActionStatus.RUNNING, ActionStatus.VERIFYING})
STARTED = frozenset(
    {
        ActionStatus.RUNNING,
        ActionStatus.VERIFYING,
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.ROLLED_BACK,
    }
)


class ActionRequest(BaseModel):
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


class ActionStore(Protocol):
    def add(self, request: ActionRequest) -> None: ...

    def get(self, request_id: str) -> ActionRequest:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def save(self, request: ActionRequest) -> None:
        """Store the request's new state (status, approval, timestamps, result)."""
        ...

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        """Oldest first."""
        ...

    def started_since(self, since: datetime) -> list[ActionRequest]:
        """Requests that started running at or after ``since``, plus any still in flight."""
        ...


class InMemoryActionStore:
    def __init__(self) -> None:
        self._items: dict[str, ActionRequest] = {}
        self._lock = threading.Lock()

    def add(self, request: ActionRequest) -> None:
        with self._lock:
            self._items[request.id] = request.model_copy(deep=True)

    def get(self, request_id: str) -> ActionRequest:
        with self._lock:
            item = self._items.get(request_id)
        if item is None:
            raise NotFoundError(f"no action request {request_id!r}")
        return item.model_copy(deep=True)

    def save(self, request: ActionRequest) -> None:
        with self._lock:
            if request.id not in self._items:
                raise NotFoundError(f"no action request {request.id!r}")
            self._items[request.id] = request.model_copy(deep=True)

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        with self._lock:
            items = list(self._items.values())
        return [
            r.model_copy(deep=True)
            for r in sorted(items, key=lambda r: r.created_at)
            if (status is None or r.status is status)
            and (incident_id is None or r.incident_id == incident_id)
        ]

    def started_since(self, since: datetime) -> list[ActionRequest]:
        with self._lock:
            items = list(self._items.values())
        return [
            r.model_copy(deep=True)
            for r in items
            if r.status in IN_FLIGHT or (r.started_at is not None and r.started_at >= since)
        ]


def history_from(store: ActionStore, now: datetime, window_seconds: float) -> History:
    """What ``decide()`` needs to know about recent and running actions."""
    records = [
        ActionRecord(
            action_id=r.action.action_id,
            service=r.action.target.service,
            namespace=r.action.target.namespace,
            started_at=r.started_at or now,
            finished_at=None if r.status in IN_FLIGHT else (r.finished_at or now),
            automatic=r.automatic,
        )
        for r in store.started_since(now - timedelta(seconds=window_seconds))
        # Read-only diagnostics change nothing: they use up no rate limit and make no target busy.
        if r.status in STARTED and r.action.risk is not Risk.READ
    ]
    return History(now=now, actions=tuple(records))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Approvals:
    """A person's approve / reject of a pending request, audited with actor, time and reason."""

    def __init__(self, store: ActionStore, audit: AuditLog, clock: Callable[[], datetime] = _utcnow) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    def pending(self) -> list[ActionRequest]:
        self.expire_due()
        return self._store.find(status=ActionStatus.PENDING)

    def expire_due(self) -> list[ActionRequest]:
        """Mark pending requests past their expiry as expired; an expired request can never run."""
        now = self._clock()
        expired: list[ActionRequest] = []
        for req in self._store.find(status=ActionStatus.PENDING):
            if req.expires_at is not None and req.expires_at <= now:
                req.status = ActionStatus.EXPIRED
                req.finished_at = now
                self._audit.append(self._entry(req, "expiry", "approval window ran out", "opsagent", now))
                self._store.save(req)
                expired.append(req)
        return expired

    def _entry(self, req: ActionRequest, kind: str, reason: str, actor: str, now: datetime) -> AuditEntry:
        return AuditEntry.model_validate(
            {
                "kind": kind,
                "reason": reason,
                "actor": actor,
                "at": now,
                "incident_id": req.incident_id,
                "request_id": req.id,
                "action_id": req.action.action_id,
                "service": req.action.target.service,
                "namespace": req.action.target.namespace,
                "level": req.level.value,
                "confidence": req.confidence,
                "outcome": req.status.value,
            }
        )

    def _decide(self, request_id: str, actor: str, reason: str, approve: bool) -> ActionRequest:
        if not actor.strip():
            raise InputError("an approval needs the name of the person giving it")
        self.expire_due()
        req = self._store.get(request_id)
        if req.status is not ActionStatus.PENDING:
            raise ConflictError(f"action request {request_id} is {req.status.value}, not pending")
        now = self._clock()
        req.status = ActionStatus.APPROVED if approve else ActionStatus.REJECTED
        req.decided_by, req.decided_at, req.decision_note = actor, now, reason
        if not approve:
            req.finished_at = now
        self._audit.append(
            self._entry(
                req, "approval" if approve else "rejection", reason or "(no reason given)", actor, now
            )
        )
        self._store.save(req)
        return req

    def approve(self, request_id: str, actor: str, reason: str = "") -> ActionRequest:
        return self._decide(request_id, actor, reason, approve=True)

    def reject(self, request_id: str, actor: str, reason: str = "") -> ActionRequest:
        return self._decide(request_id, actor, reason, approve=False)

"""The circuit breaker: after a failure, no more automatic changes until a person has looked.

A changing action that failed, or whose verification failed (rolled back or not), opens the breaker
for its incident: the incident's remaining proposals wait for approval. ``breaker_max_failures``
such failures within ``breaker_window_seconds``, across incidents, open it everywhere. It stays open
until a person resets it (``POST /v1/breaker/reset``, ``opsagent breaker reset``); a reset is written
to the ledger and the audit log, and failures that finished before it no longer count. A global
reset re-arms every incident too.

The state is computed from the ledger itself (the requests' statuses and the resets), inside the
runner's atomic step, so every API process and worker sees the same breaker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, Field

from opsagent.autonomy.approvals import ActionStore
from opsagent.autonomy.audit import AuditLog
from opsagent.config import AutonomySettings
from opsagent.domain import GLOBAL_SCOPE, ActionRequest, ActionStatus, AuditEntry, BreakerReset, Risk
from opsagent.errors import InputError

FAILURES = frozenset({ActionStatus.FAILED, ActionStatus.ROLLED_BACK})


class _Ledger(Protocol):
    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]: ...

    def started_since(self, since: datetime) -> list[ActionRequest]: ...

    def resets(self) -> list[BreakerReset]: ...


class BreakerState(BaseModel):
    """Why the breaker is open globally (None: closed) and for which incidents."""

    open_globally: str | None = None
    incidents: dict[str, str] = Field(default_factory=dict)


def _failed(req: ActionRequest, after: datetime | None) -> bool:
    if req.status not in FAILURES or req.started_at is None or req.action.risk is Risk.READ:
        return False
    ended = req.finished_at or req.started_at
    return after is None or ended > after


def _last_resets(resets: list[BreakerReset]) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for reset in resets:
        if reset.scope not in out or reset.at > out[reset.scope]:
            out[reset.scope] = reset.at
    return out


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def global_reason(ledger: _Ledger, now: datetime, policy: AutonomySettings) -> str | None:
    last = _last_resets(ledger.resets()).get(GLOBAL_SCOPE)
    since = now - timedelta(seconds=policy.breaker_window_seconds)
    failures = [r for r in ledger.started_since(since) if _failed(r, last)]
    if len(failures) < policy.breaker_max_failures:
        return None
    return (
        f"{len(failures)} actions failed within {policy.breaker_window_seconds:g}s "
        f"(max {policy.breaker_max_failures}); automatic actions are stopped everywhere until a person resets it"
    )


def incident_reason(ledger: _Ledger, incident_id: str) -> str | None:
    resets = _last_resets(ledger.resets())
    after = _later(resets.get(GLOBAL_SCOPE), resets.get(incident_id))
    failures = [r for r in ledger.find(incident_id=incident_id) if _failed(r, after)]
    if not failures:
        return None
    first = failures[0]
    return (
        f"{first.action.action_id} ({first.id}) {first.status.value} for incident {incident_id}; "
        "no more automatic actions for it until a person resets the breaker"
    )


def reason(ledger: _Ledger, incident_id: str, now: datetime, policy: AutonomySettings) -> str | None:
    """Why the breaker holds an automatic action for ``incident_id`` back now, or None."""
    return global_reason(ledger, now, policy) or incident_reason(ledger, incident_id)


def state(ledger: _Ledger, now: datetime, policy: AutonomySettings) -> BreakerState:
    incidents: dict[str, str] = {}
    for req in ledger.find():
        if req.incident_id not in incidents and req.status in FAILURES:
            why = incident_reason(ledger, req.incident_id)
            if why is not None:
                incidents[req.incident_id] = why
    return BreakerState(open_globally=global_reason(ledger, now, policy), incidents=incidents)


def reset(
    store: ActionStore,
    audit: AuditLog,
    *,
    actor: str,
    reason: str = "",
    incident_id: str | None = None,
    now: datetime | None = None,
) -> BreakerReset:
    """A person re-arms automatic actions: for ``incident_id``, or everywhere. Written to the ledger
    and the audit log in one step."""
    if not actor.strip():
        raise InputError("a breaker reset needs the name of the person making it")
    scope = incident_id or GLOBAL_SCOPE
    entry = BreakerReset(scope=scope, at=now or datetime.now(UTC), actor=actor, reason=reason)
    with store.atomic(audit) as ledger:
        ledger.audit(
            AuditEntry(
                kind="breaker_reset",
                reason=reason or "circuit breaker reset",
                actor=actor,
                at=entry.at,
                incident_id=incident_id,
                outcome="reset",
                detail={"scope": scope},
            )
        )
        ledger.add_reset(entry)
    return entry

"""SQL implementations of the autonomy seams over their tables (``store.models``): action requests,
the audit log, the kill switch.

The audit table is append-only in two ways: ``SqlAuditLog`` has no update or delete, and migration 0002
installs triggers that make the database itself refuse UPDATE and DELETE on it (SQLite and PostgreSQL).
The kill switch is one row, so the API, the CLI and every worker read the same value.

``SqlActionStore.atomic()`` is the ledger's critical section across processes: on PostgreSQL a
transaction-scoped advisory lock, on SQLite the database write lock (``BEGIN IMMEDIATE``). It is one
lock for the whole ledger, not one per target, because one of the limits it protects spans targets
(no more than ``max_concurrent_services`` services acted on at once); it is held only while the gate
reads the ledger and the decision and request are written, never while an action runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from opsagent.domain import ActionRequest, ActionStatus, AuditEntry, BreakerReset, KillSwitchState
from opsagent.errors import NotFoundError
from opsagent.store.db import Store
from opsagent.store.models import ActionRequestRow, AuditRow, BreakerResetRow, KillSwitchRow

# Statuses in which an action is changing its target (the ledger reads them as in flight).
IN_FLIGHT = frozenset({ActionStatus.RUNNING, ActionStatus.VERIFYING})


class _AuditLog(Protocol):
    """The audit log as the ledger needs it (``autonomy.audit.AuditLog``, structurally)."""

    def append(self, entry: AuditEntry) -> AuditEntry: ...


# The advisory lock key of the action ledger (the migration lock in store/db.py is 7_407_001).
LEDGER_LOCK = 7_407_002


def _to_row(req: ActionRequest, row: ActionRequestRow) -> None:
    row.incident_id = req.incident_id
    row.action_id = req.action.action_id
    # The columns name what the action touches (its resolved target), not what it claimed.
    resolved = req.action.resolved
    row.service = (resolved.service or resolved.name) if resolved is not None else req.action.target.service
    row.namespace = resolved.namespace if resolved is not None else req.action.target.namespace
    row.status = req.status.value
    row.automatic = req.automatic
    row.confidence = req.confidence
    row.level = req.level.value
    row.reason = req.reason
    row.action = req.action.model_dump(mode="json")
    row.created_at = req.created_at
    row.expires_at = req.expires_at
    row.decided_by = req.decided_by
    row.decided_at = req.decided_at
    row.decision_note = req.decision_note
    row.started_at = req.started_at
    row.finished_at = req.finished_at
    row.result = req.result


def _from_row(row: ActionRequestRow) -> ActionRequest:
    return ActionRequest.model_validate(
        {
            "id": row.id,
            "incident_id": row.incident_id,
            "action": row.action,
            "confidence": row.confidence,
            "level": row.level,
            "status": row.status,
            "reason": row.reason,
            "automatic": row.automatic,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "decided_by": row.decided_by,
            "decided_at": row.decided_at,
            "decision_note": row.decision_note,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
            "result": row.result,
        }
    )


def _add(s: Session, request: ActionRequest) -> None:
    row = ActionRequestRow(id=request.id)
    _to_row(request, row)
    s.add(row)
    s.flush()


def _get(s: Session, request_id: str, *, for_update: bool = False) -> ActionRequestRow:
    query = select(ActionRequestRow).where(ActionRequestRow.id == request_id)
    if for_update:
        query = query.with_for_update()
    row = s.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no action request {request_id!r}")
    return row


def _save(s: Session, request: ActionRequest) -> None:
    _to_row(request, _get(s, request.id))
    s.flush()


def _find(s: Session, status: ActionStatus | None, incident_id: str | None) -> list[ActionRequest]:
    query = select(ActionRequestRow).order_by(ActionRequestRow.created_at, ActionRequestRow.id)
    if status is not None:
        query = query.where(ActionRequestRow.status == status.value)
    if incident_id is not None:
        query = query.where(ActionRequestRow.incident_id == incident_id)
    return [_from_row(r) for r in s.scalars(query)]


def _started_since(s: Session, since: datetime) -> list[ActionRequest]:
    query = select(ActionRequestRow).where(
        (ActionRequestRow.started_at >= since) | ActionRequestRow.status.in_([st.value for st in IN_FLIGHT])
    )
    return [_from_row(r) for r in s.scalars(query)]


def _resets(s: Session) -> list[BreakerReset]:
    rows = s.scalars(select(BreakerResetRow).order_by(BreakerResetRow.id))
    return [BreakerReset(scope=r.scope, at=r.at, actor=r.actor, reason=r.reason) for r in rows]


def _add_reset(s: Session, reset: BreakerReset) -> None:
    s.add(BreakerResetRow(scope=reset.scope, at=reset.at, actor=reset.actor, reason=reset.reason))
    s.flush()


class _SqlLedger:
    """The ledger inside one ``SqlActionStore.atomic()`` transaction."""

    def __init__(self, session: Session, audit_log: _AuditLog | None) -> None:
        self._s = session
        # None: the audit log is in this database, so its entries join this transaction.
        self._audit_log = audit_log

    def get(self, request_id: str) -> ActionRequest:
        return _from_row(_get(self._s, request_id))

    def add(self, request: ActionRequest) -> None:
        _add(self._s, request)

    def save(self, request: ActionRequest) -> None:
        _save(self._s, request)

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        return _find(self._s, status, incident_id)

    def started_since(self, since: datetime) -> list[ActionRequest]:
        return _started_since(self._s, since)

    def resets(self) -> list[BreakerReset]:
        return _resets(self._s)

    def add_reset(self, reset: BreakerReset) -> None:
        _add_reset(self._s, reset)

    def audit(self, entry: AuditEntry) -> AuditEntry:
        if self._audit_log is None:
            return _append_audit(self._s, entry)
        return self._audit_log.append(entry)


class SqlActionStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    @contextmanager
    def atomic(self, audit: _AuditLog) -> Iterator[_SqlLedger]:
        """Serialised against every other process's ``atomic()`` on this database (see the module doc)."""
        same_db = isinstance(audit, SqlAuditLog) and audit.store.url == self._store.url
        with self._store.session() as s:
            if self._store.dialect == "postgresql":
                # Released by the commit or rollback that ends the session, or when the connection drops.
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK})
            else:
                # SQLite: the session began with BEGIN IMMEDIATE; this first statement takes the write
                # lock now, before anything is read.
                s.execute(text("SELECT 1"))
            yield _SqlLedger(s, None if same_db else audit)

    def add(self, request: ActionRequest) -> None:
        with self._store.session() as s:
            _add(s, request)

    def get(self, request_id: str) -> ActionRequest:
        with self._store.read() as s:
            return _from_row(_get(s, request_id))

    def save(self, request: ActionRequest) -> None:
        with self._store.session() as s:
            _save(s, request)

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        with self._store.read() as s:
            return _find(s, status, incident_id)

    def started_since(self, since: datetime) -> list[ActionRequest]:
        with self._store.read() as s:
            return _started_since(s, since)

    def resets(self) -> list[BreakerReset]:
        with self._store.read() as s:
            return _resets(s)


def incident_requests(session: Session, incident_id: str) -> list[ActionRequest]:
    """The action requests of one incident, oldest first, on the caller's (read) session."""
    return _find(session, None, incident_id)


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry.model_validate(
        {
            "seq": row.seq,
            "at": row.at,
            "kind": row.kind,
            "actor": row.actor,
            "reason": row.reason,
            "incident_id": row.incident_id,
            "request_id": row.request_id,
            "action_id": row.action_id,
            "service": row.service,
            "namespace": row.namespace,
            "level": row.level,
            "policy_version": row.policy_version,
            "confidence": row.confidence,
            "outcome": row.outcome,
            "detail": row.detail or {},
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
    )


def _append_audit(s: Session, entry: AuditEntry) -> AuditEntry:
    """Append ``entry`` in the session's transaction, chained onto the last entry."""
    if s.get_bind().dialect.name == "postgresql":
        # Serialise appenders so two never chain onto the same predecessor.
        s.execute(select(KillSwitchRow).where(KillSwitchRow.id == 0).with_for_update())
    prev = s.scalars(select(AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first() or ""
    # Round-trip through JSON first so the hash covers what the database will return.
    clean = AuditEntry.model_validate(entry.model_dump(mode="json"))
    digest = clean.chained_hash(prev)
    row = AuditRow(
        at=clean.at,
        kind=clean.kind,
        actor=clean.actor,
        reason=clean.reason,
        incident_id=clean.incident_id,
        request_id=clean.request_id,
        action_id=clean.action_id,
        service=clean.service,
        namespace=clean.namespace,
        level=clean.level,
        policy_version=clean.policy_version,
        confidence=clean.confidence,
        outcome=clean.outcome,
        detail=clean.detail,
        prev_hash=prev,
        hash=digest,
    )
    s.add(row)
    s.flush()
    return clean.model_copy(update={"seq": row.seq, "prev_hash": prev, "hash": digest})


class SqlAuditLog:
    """Append-only; the hash chain is computed inside the write transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def append(self, entry: AuditEntry) -> AuditEntry:
        with self._store.session() as s:
            return _append_audit(s, entry)

    def entries(
        self, *, incident_id: str | None = None, request_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        query = select(AuditRow).order_by(AuditRow.seq)
        if incident_id is not None:
            query = query.where(AuditRow.incident_id == incident_id)
        if request_id is not None:
            query = query.where(AuditRow.request_id == request_id)
        with self._store.session() as s:
            rows = [_entry(r) for r in s.scalars(query)]
        return rows[-limit:] if limit else rows


class SqlKillSwitch:
    """Row id 1 holds the switch; row id 0 is the lock row audit appenders serialise on (PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def state(self) -> KillSwitchState:
        with self._store.session() as s:
            row = s.get(KillSwitchRow, 1)
            if row is None:
                return KillSwitchState()
            return KillSwitchState(on=row.on, actor=row.actor, reason=row.reason, changed_at=row.changed_at)

    def set(self, state: KillSwitchState) -> None:
        with self._store.session() as s:
            row = s.get(KillSwitchRow, 1)
            if row is None:
                row = KillSwitchRow(id=1)
                s.add(row)
            row.on, row.actor, row.reason, row.changed_at = (
                state.on,
                state.actor,
                state.reason,
                state.changed_at,
            )

"""Tables and SQL implementations of the autonomy seams: action requests, the audit log, the kill switch.

The audit table is append-only in two ways: ``SqlAuditLog`` has no update or delete, and migration 0002
installs triggers that make the database itself refuse UPDATE and DELETE on it (SQLite and PostgreSQL).
The kill switch is one row, so the API, the CLI and every worker read the same value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from opsagent.autonomy.approvals import IN_FLIGHT, ActionRequest, ActionStatus
from opsagent.autonomy.audit import AuditEntry, entry_hash
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.executors import Executors
from opsagent.autonomy.killswitch import KillSwitchState
from opsagent.autonomy.runner import ActionRunner
from opsagent.autonomy.verify import PrometheusVerifier
from opsagent.config import Settings
from opsagent.errors import NotFoundError
from opsagent.store.base import Base, JSONType, UTCDateTime, utcnow
from opsagent.store.db import Store

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ActionRequestRow(Base):
    __tablename__ = "action_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    action_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(255), index=True)
    namespace: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(4))
    reason: Mapped[str] = mapped_column(Text)
    # The validated ProposedAction as JSON: what was decided on is exactly what runs.
    action: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    incident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(32), index=True)
    action_id: Mapped[str | None] = mapped_column(String(128))
    service: Mapped[str | None] = mapped_column(String(255))
    namespace: Mapped[str | None] = mapped_column(String(255))
    level: Mapped[str | None] = mapped_column(String(4))
    policy_version: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class KillSwitchRow(Base):
    __tablename__ = "kill_switch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    on: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _to_row(req: ActionRequest, row: ActionRequestRow) -> None:
    row.incident_id = req.incident_id
    row.action_id = req.action.action_id
    row.service = req.action.target.service
    row.namespace = req.action.target.namespace
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


class SqlActionStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, request: ActionRequest) -> None:
        with self._store.session() as s:
            row = ActionRequestRow(id=request.id)
            _to_row(request, row)
            s.add(row)

    def get(self, request_id: str) -> ActionRequest:
        with self._store.session() as s:
            row = s.get(ActionRequestRow, request_id)
            if row is None:
                raise NotFoundError(f"no action request {request_id!r}")
            return _from_row(row)

    def save(self, request: ActionRequest) -> None:
        with self._store.session() as s:
            row = s.get(ActionRequestRow, request.id)
            if row is None:
                raise NotFoundError(f"no action request {request.id!r}")
            _to_row(request, row)

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        query = select(ActionRequestRow).order_by(ActionRequestRow.created_at, ActionRequestRow.id)
        if status is not None:
            query = query.where(ActionRequestRow.status == status.value)
        if incident_id is not None:
            query = query.where(ActionRequestRow.incident_id == incident_id)
        with self._store.session() as s:
            return [_from_row(r) for r in s.scalars(query)]

    def started_since(self, since: datetime) -> list[ActionRequest]:
        query = select(ActionRequestRow).where(
            (ActionRequestRow.started_at >= since) | ActionRequestRow.status.in_([s.value for s in IN_FLIGHT])
        )
        with self._store.session() as s:
            return [_from_row(r) for r in s.scalars(query)]


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


class SqlAuditLog:
    """Append-only; the hash chain is computed inside the write transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def append(self, entry: AuditEntry) -> AuditEntry:
        with self._store.session() as s:
            if self._store.dialect == "postgresql":
                # Serialise appenders so two never chain onto the same predecessor.
                s.execute(select(KillSwitchRow).where(KillSwitchRow.id == 0).with_for_update())
            prev = s.scalars(select(AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first() or ""
            # Round-trip through JSON first so the hash covers what the database will return.
            clean = AuditEntry.model_validate(entry.model_dump(mode="json"))
            digest = entry_hash(clean, prev)
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


def build_action_runner(settings: Settings, store: Store, catalog: ActionCatalog) -> ActionRunner:
    """The runner on the database seams, with the executors and verifier the settings configure."""
    policy = settings.autonomy
    verifier = None
    if settings.prometheus.url:
        verifier = PrometheusVerifier(
            settings.prometheus.url,
            timeout_seconds=settings.prometheus.timeout_seconds,
            poll_seconds=policy.verify_poll_seconds,
            max_wait_seconds=policy.verify_max_wait_seconds,
            headers=settings.prometheus.headers,
        )
    return ActionRunner(
        level=settings.autonomy_level,
        policy=policy,
        catalog=catalog,
        executors=Executors.from_settings(policy),
        store=SqlActionStore(store),
        audit=SqlAuditLog(store),
        kill_switch=SqlKillSwitch(store),
        verifier=verifier,
    )

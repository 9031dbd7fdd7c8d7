"""Repository functions over a ``Session``: what the API and the job queue ask of the database.

Idempotence rests on constraints, not on reads before writes: alerts are inserted with
``ON CONFLICT DO NOTHING`` on (fingerprint, starts_at), incidents on their id, and automatic
investigations on their unique ``trigger_key``. Two concurrent deliveries of the same payload
therefore store it once and queue at most one investigation, whichever commits first.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsagent.domain import Alert, Incident, Investigation, TimeWindow
from opsagent.errors import ConflictError, NotFoundError, QueueFullError
from opsagent.store.base import UTCDateTime, utcnow
from opsagent.store.models import (
    AlertRow,
    ChatMessageRow,
    ConversationRow,
    IncidentRow,
    InvestigationRow,
    TokenRow,
    UserRow,
)

UNFINISHED = ("queued", "running")

_RowT = TypeVar("_RowT")


def _insert(session: Session, model: type[Any]) -> Any:
    """A dialect-specific INSERT that supports ``on_conflict_do_nothing``."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def new_id() -> str:
    return uuid.uuid4().hex


def _require(session: Session, model: type[_RowT], key: str, what: str) -> _RowT:
    """The row with primary key ``key``, or ``NotFoundError`` naming it (the API's 404)."""
    row = session.get(model, key)
    if row is None:
        raise NotFoundError(f"{what} {key!r} does not exist")
    return row


# --------------------------------------------------------------------------------------------- alerts


@dataclass
class IngestResult:
    incident_id: str
    created: bool = False
    reopened: bool = False
    new_alerts: int = 0
    duplicates: int = 0
    resolved: int = 0
    investigation_id: str | None = None
    notes: list[str] = field(default_factory=list)


class _IngestStatements:
    """The webhook's statements, built once per dialect: building and compiling a statement per
    request costs more than executing it."""

    def __init__(self, dialect: str) -> None:
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.insert_incident = (
            ins(IncidentRow).on_conflict_do_nothing(index_elements=["id"]).returning(IncidentRow.id)
        )
        self.insert_alert = (
            ins(AlertRow)
            .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at"])
            .returning(AlertRow.id)
        )
        self.resolve_alert = (
            update(AlertRow)
            .where(
                AlertRow.fingerprint == bindparam("b_fingerprint"),
                AlertRow.starts_at == bindparam("b_starts_at", type_=UTCDateTime),
                AlertRow.status == "firing",
            )
            .values(
                status="resolved",
                ends_at=bindparam("b_ends_at", type_=UTCDateTime),
                resolved_at=bindparam("b_now", type_=UTCDateTime),
            )
            .returning(AlertRow.id)
        )
        start = bindparam("b_start", type_=UTCDateTime)
        end = bindparam("b_end", type_=UTCDateTime)
        self.extend_window = (
            update(IncidentRow)
            .where(IncidentRow.id == bindparam("b_id"))
            .values(
                window_start=case((IncidentRow.window_start > start, start), else_=IncidentRow.window_start),
                window_end=case((IncidentRow.window_end < end, end), else_=IncidentRow.window_end),
                updated_at=bindparam("b_now", type_=UTCDateTime),
            )
        )
        self.reopen = (
            update(IncidentRow)
            .where(IncidentRow.id == bindparam("b_id"), IncidentRow.status == "resolved")
            .values(
                status="open",
                episode=IncidentRow.episode + 1,
                resolved_at=None,
                updated_at=bindparam("b_now", type_=UTCDateTime),
            )
            .returning(IncidentRow.episode)
        )
        self.insert_investigation = (
            ins(InvestigationRow)
            .on_conflict_do_nothing(index_elements=["trigger_key"])
            .returning(InvestigationRow.id)
        )
        # The batch path (``ingest_batch``) reads back which keys its multi-row inserts stored.
        self.insert_alerts = (
            ins(AlertRow)
            .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at"])
            .returning(AlertRow.fingerprint, AlertRow.starts_at)
        )
        self.reopen_many = (
            update(IncidentRow)
            .where(IncidentRow.id.in_(bindparam("b_ids", expanding=True)), IncidentRow.status == "resolved")
            .values(
                status="open",
                episode=IncidentRow.episode + 1,
                resolved_at=None,
                updated_at=bindparam("b_now", type_=UTCDateTime),
            )
            .returning(IncidentRow.id, IncidentRow.episode)
        )


_STATEMENTS: dict[str, _IngestStatements] = {}


def _statements(session: Session) -> _IngestStatements:
    dialect = session.get_bind().dialect.name
    stmts = _STATEMENTS.get(dialect)
    if stmts is None:
        stmts = _STATEMENTS[dialect] = _IngestStatements(dialect)
    return stmts


def _incident_params(incident: Incident, now: datetime, *, firing: bool) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title[:500],
        "origin": incident.origin,
        "group_key": incident.group_key,
        "status": "open" if firing else "resolved",
        "service": incident.services[0] if incident.services else None,
        "namespace": incident.namespace,
        "question": incident.question,
        "window_start": incident.window.start,
        "window_end": incident.window.end,
        "alert_time": incident.alert_time,
        "episode": 1,
        "created_at": now,
        "updated_at": now,
        "resolved_at": None if firing else now,
    }


def _alert_params(incident_id: str, alert: Alert, now: datetime) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "fingerprint": alert.fingerprint,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "name": alert.name[:255],
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generator_url": alert.generator_url,
        "received_at": now,
        "resolved_at": now if alert.status == "resolved" else None,
    }


def _investigation_params(inv_id: str, incident_id: str, episode: int, now: datetime) -> dict[str, Any]:
    return {
        "id": inv_id,
        "incident_id": incident_id,
        "trigger": "alert",
        "trigger_key": f"auto:{incident_id}:{episode}",
        "requested_by": None,
        "status": "queued",
        "attempts": 0,
        "created_at": now,
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }


def _alert_key(fingerprint: str, starts_at: datetime) -> tuple[str, datetime]:
    # Naive times are UTC (as UTCDateTime stores them); the database hands back aware UTC times.
    aware = starts_at.replace(tzinfo=UTC) if starts_at.tzinfo is None else starts_at.astimezone(UTC)
    return fingerprint, aware


def ingest_batch(
    session: Session, items: Sequence[tuple[Incident, bool]], *, now: datetime | None = None
) -> list[IngestResult]:
    """``ingest_incident`` for several deliveries (incident, auto_investigate) in one transaction.

    Deliveries whose alerts are all firing, the bulk of an alert storm, are stored with a handful of
    set-based statements whatever their number (one multi-row INSERT each for incidents, alerts and
    investigations, one UPDATE for windows, one for reopening): a few round trips per batch instead
    of four or five per delivery. Deliveries with resolved alerts follow, one by one. The deliveries
    of one batch were in flight together, so any order among them is an order they could have
    arrived in; the results are those of storing them one after the other in that order.
    """
    now = now or utcnow()
    results = [IngestResult(incident_id=incident.id) for incident, _ in items]
    firing = [
        i
        for i, (incident, _) in enumerate(items)
        if incident.alerts and all(a.status == "firing" for a in incident.alerts)
    ]
    if firing:
        _ingest_firing(session, items, firing, results, now)
    done = set(firing)
    for i, (incident, auto) in enumerate(items):
        if i not in done:
            results[i] = ingest_incident(session, incident, auto_investigate=auto, now=now)
    return results


def _ingest_firing(
    session: Session,
    items: Sequence[tuple[Incident, bool]],
    order: list[int],
    results: list[IngestResult],
    now: datetime,
) -> None:
    st = _statements(session)
    conn = session.connection()
    # Rows go in sorted by key, so concurrent batches (several writers on PostgreSQL) take their
    # unique-index locks in the same order and cannot deadlock one another.
    first_of: dict[str, int] = {}
    for i in order:
        first_of.setdefault(items[i][0].id, i)
    created = {
        row[0]
        for row in conn.execute(
            st.insert_incident,
            [_incident_params(items[i][0], now, firing=True) for _, i in sorted(first_of.items())],
        )
    }
    for incident_id, i in first_of.items():
        results[i].created = incident_id in created

    alert_rows: dict[tuple[str, datetime], dict[str, Any]] = {}
    for i in order:
        incident = items[i][0]
        for alert in incident.alerts:
            # The first delivery of an alert in the batch stores it; the same alert again is a duplicate.
            alert_rows.setdefault(
                _alert_key(alert.fingerprint, alert.starts_at), _alert_params(incident.id, alert, now)
            )
    stored = {
        _alert_key(fp, starts_at)
        for fp, starts_at in conn.execute(st.insert_alerts, [alert_rows[k] for k in sorted(alert_rows)])
    }
    claimed: set[tuple[str, datetime]] = set()
    grown: dict[str, tuple[datetime, datetime]] = {}
    first_new: dict[str, int] = {}
    for i in order:
        incident, result = items[i][0], results[i]
        for alert in incident.alerts:
            key = _alert_key(alert.fingerprint, alert.starts_at)
            if key in stored and key not in claimed:
                claimed.add(key)
                result.new_alerts += 1
            else:
                result.duplicates += 1
        if result.new_alerts and not result.created:
            start, end = incident.window.start, incident.window.end
            if incident.id in grown:
                old_start, old_end = grown[incident.id]
                start, end = min(start, old_start), max(end, old_end)
            grown[incident.id] = (start, end)
            first_new.setdefault(incident.id, i)
    episodes: dict[str, int] = {}
    if grown:
        conn.execute(
            st.extend_window,
            [
                {"b_id": incident_id, "b_start": start, "b_end": end, "b_now": now}
                for incident_id, (start, end) in sorted(grown.items())
            ],
        )
        # Only an incident that was resolved before this batch can reopen, and only once: the first
        # delivery that brings it a new firing alert starts the new episode.
        for incident_id, episode in conn.execute(st.reopen_many, {"b_ids": sorted(grown), "b_now": now}):
            results[first_new[incident_id]].reopened = True
            episodes[incident_id] = episode

    planned: dict[str, tuple[int, str]] = {}
    for i in order:
        incident, auto = items[i]
        result = results[i]
        if auto and (result.created or result.reopened):
            planned[incident.id] = (i, new_id())
    if planned:
        rows = [
            _investigation_params(inv_id, incident_id, episodes.get(incident_id, 1), now)
            for incident_id, (_, inv_id) in sorted(planned.items())
        ]
        queued = {row[0] for row in conn.execute(st.insert_investigation, rows)}
        for i, inv_id in planned.values():
            results[i].investigation_id = inv_id if inv_id in queued else None


def ingest_incident(
    session: Session, incident: Incident, *, auto_investigate: bool, now: datetime | None = None
) -> IngestResult:
    """Store an incident's alerts (from one webhook delivery); queue its automatic investigation.

    Firing alerts already stored are counted as duplicates; resolved alerts mark the stored alert
    resolved (or are stored resolved). An incident whose alerts are all resolved is resolved; a
    resolved incident with a new firing alert is reopened as a new episode.
    """
    now = now or utcnow()
    st = _statements(session)
    conn = session.connection()
    result = IngestResult(incident_id=incident.id)
    firing = [a for a in incident.alerts if a.status == "firing"]
    inserted = conn.execute(st.insert_incident, _incident_params(incident, now, firing=bool(firing))).first()
    result.created = inserted is not None

    for alert in incident.alerts:
        _ingest_alert(conn, st, incident.id, alert, now, result)

    episode = 1
    if not result.created and result.new_alerts:
        conn.execute(
            st.extend_window,
            {
                "b_id": incident.id,
                "b_start": incident.window.start,
                "b_end": incident.window.end,
                "b_now": now,
            },
        )
        if firing:
            reopened = conn.execute(st.reopen, {"b_id": incident.id, "b_now": now}).first()
            if reopened is not None:
                result.reopened = True
                episode = reopened[0]
    if result.resolved and not result.created:
        still_firing = conn.scalar(
            select(func.count())
            .select_from(AlertRow)
            .where(AlertRow.incident_id == incident.id, AlertRow.status == "firing")
        )
        if not still_firing:
            conn.execute(
                update(IncidentRow)
                .where(IncidentRow.id == incident.id, IncidentRow.status == "open")
                .values(status="resolved", resolved_at=now, updated_at=now)
            )

    starts_episode = (result.created and bool(firing)) or result.reopened
    if auto_investigate and starts_episode:
        inv_id = new_id()
        row = conn.execute(
            st.insert_investigation, _investigation_params(inv_id, incident.id, episode, now)
        ).first()
        result.investigation_id = inv_id if row is not None else None
    return result


def _ingest_alert(
    conn: Connection,
    st: _IngestStatements,
    incident_id: str,
    alert: Alert,
    now: datetime,
    result: IngestResult,
) -> None:
    if alert.status == "resolved":
        updated = conn.execute(
            st.resolve_alert,
            {
                "b_fingerprint": alert.fingerprint,
                "b_starts_at": alert.starts_at,
                "b_ends_at": alert.ends_at,
                "b_now": now,
            },
        ).first()
        if updated is not None:
            result.resolved += 1
            return
    row = conn.execute(st.insert_alert, _alert_params(incident_id, alert, now)).first()
    if row is None:
        result.duplicates += 1
    else:
        result.new_alerts += 1


def store_question_incident(session: Session, incident: Incident) -> None:
    """Store an incident that came from a chat question (no alerts)."""
    session.execute(
        _insert(session, IncidentRow)
        .values(
            id=incident.id,
            title=incident.title[:500],
            origin=incident.origin,
            status="open",
            service=incident.service_hint,
            namespace=incident.namespace,
            question=incident.question,
            window_start=incident.window.start,
            window_end=incident.window.end,
            alert_time=incident.alert_time,
            created_at=incident.created_at,
            updated_at=incident.created_at,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


# ------------------------------------------------------------------------------------------ incidents


def get_incident_row(session: Session, incident_id: str) -> IncidentRow:
    return _require(session, IncidentRow, incident_id, "incident")


def alerts_of(session: Session, incident_id: str) -> list[AlertRow]:
    return list(
        session.scalars(
            select(AlertRow)
            .where(AlertRow.incident_id == incident_id)
            .order_by(AlertRow.starts_at, AlertRow.id)
        )
    )


def load_incident(session: Session, incident_id: str) -> Incident:
    """The domain ``Incident`` as stored, with all its alerts, for ``pipeline.investigate``."""
    row = get_incident_row(session, incident_id)
    alerts = [
        Alert(
            fingerprint=a.fingerprint,
            name=a.name,
            status="resolved" if a.status == "resolved" else "firing",
            labels=a.labels,
            annotations=a.annotations,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            generator_url=a.generator_url,
        )
        for a in alerts_of(session, incident_id)
    ]
    origin = row.origin if row.origin in ("alertmanager", "chat", "recorded", "manual") else "manual"
    return Incident(
        id=row.id,
        title=row.title,
        origin=origin,
        group_key=row.group_key,
        alerts=alerts,
        window=TimeWindow(start=row.window_start, end=row.window_end),
        alert_time=row.alert_time,
        namespace=row.namespace,
        service_hint=row.service if row.origin == "chat" else None,
        question=row.question,
        created_at=row.created_at,
    )


def list_incidents(
    session: Session,
    *,
    status: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[IncidentRow], int]:
    """A page of incidents, newest first, and the total number matching the filters."""
    conditions: list[ColumnElement[bool]] = []
    if status:
        conditions.append(IncidentRow.status == status)
    if service:
        conditions.append(IncidentRow.service == service)
    if since:
        conditions.append(IncidentRow.created_at >= since)
    if until:
        conditions.append(IncidentRow.created_at < until)
    query: Select[IncidentRow] = select(IncidentRow).where(*conditions)
    total = session.scalar(select(func.count()).select_from(IncidentRow).where(*conditions)) or 0
    rows = session.scalars(
        query.order_by(IncidentRow.created_at.desc(), IncidentRow.id).limit(limit).offset(offset)
    )
    return list(rows), total


# ------------------------------------------------------------------------------------- investigations


def create_investigation(
    session: Session,
    incident_id: str,
    *,
    trigger: str,
    trigger_key: str | None = None,
    requested_by: str | None = None,
    now: datetime | None = None,
) -> str | None:
    """Queue an investigation; None when ``trigger_key`` was already used (someone queued it first)."""
    now = now or utcnow()
    inv_id = new_id()
    row = session.execute(
        _insert(session, InvestigationRow)
        .values(
            id=inv_id,
            incident_id=incident_id,
            trigger=trigger,
            trigger_key=trigger_key,
            requested_by=requested_by,
            status="queued",
            attempts=0,
            created_at=now,
            prompt_tokens=0,
            completion_tokens=0,
        )
        .on_conflict_do_nothing(index_elements=["trigger_key"])
        .returning(InvestigationRow.id)
    ).first()
    return inv_id if row is not None else None


def request_investigation(
    session: Session, incident_id: str, *, requested_by: str | None, max_pending: int
) -> tuple[str, bool]:
    """A person asks for an investigation: reuse an unfinished one, else queue one. (id, created)."""
    get_incident_row(session, incident_id)
    existing = session.scalar(
        select(InvestigationRow.id)
        .where(InvestigationRow.incident_id == incident_id, InvestigationRow.status.in_(UNFINISHED))
        .order_by(InvestigationRow.created_at.desc())
        .limit(1)
    )
    if existing is not None:
        return existing, False
    if pending_count(session) >= max_pending:
        raise QueueFullError(f"{max_pending} investigations are already waiting; retry later")
    inv_id = create_investigation(session, incident_id, trigger="manual", requested_by=requested_by)
    assert inv_id is not None  # no trigger_key, so no conflict is possible
    return inv_id, True


def pending_count(session: Session) -> int:
    return _count_investigations(session, InvestigationRow.status.in_(UNFINISHED))


def queued_count(session: Session) -> int:
    return _count_investigations(session, InvestigationRow.status == "queued")


def _count_investigations(session: Session, where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(InvestigationRow).where(where)) or 0


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        InvestigationRow.status == "queued",
        (InvestigationRow.status == "running") & (InvestigationRow.lease_until < now),
    )


def claim(
    session: Session, inv_id: str, *, worker: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Take a queued (or abandoned) investigation; False when someone else has it or it is finished."""
    now = now or utcnow()
    row = session.execute(
        update(InvestigationRow)
        .where(InvestigationRow.id == inv_id, _claimable(now))
        .values(
            status="running",
            attempts=InvestigationRow.attempts + 1,
            worker=worker[:255],
            lease_until=now + timedelta(seconds=lease_seconds),
            started_at=now,
        )
        .returning(InvestigationRow.id)
    ).first()
    return row is not None


def claim_next(
    session: Session, *, worker: str, lease_seconds: float, now: datetime | None = None
) -> str | None:
    """Take the oldest claimable investigation, if any (``SKIP LOCKED`` on PostgreSQL)."""
    now = now or utcnow()
    query = (
        select(InvestigationRow.id)
        .where(_claimable(now))
        .order_by(InvestigationRow.created_at, InvestigationRow.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    inv_id = session.scalar(query)
    if inv_id is None:
        return None
    return inv_id if claim(session, inv_id, worker=worker, lease_seconds=lease_seconds, now=now) else None


def renew_lease(session: Session, inv_id: str, *, worker: str, lease_seconds: float) -> bool:
    """Extend a running investigation's lease; False if it was taken over meanwhile."""
    row = session.execute(
        update(InvestigationRow)
        .where(
            InvestigationRow.id == inv_id,
            InvestigationRow.status == "running",
            InvestigationRow.worker == worker[:255],
        )
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        .returning(InvestigationRow.id)
    ).first()
    return row is not None


def finish_investigation(session: Session, inv_id: str, inv: Investigation, *, worker: str) -> bool:
    """Store the result; False if another worker took the job over (its result will be stored instead)."""
    top = inv.findings.root_causes[0] if inv.findings.root_causes else None
    row = session.execute(
        update(InvestigationRow)
        .where(
            InvestigationRow.id == inv_id,
            InvestigationRow.status == "running",
            InvestigationRow.worker == worker[:255],
        )
        .values(
            status="done",
            finished_at=utcnow(),
            lease_until=None,
            error=None,
            autonomy_level=inv.autonomy_level.value,
            reasoner=inv.findings.reasoner[:64],
            top_service=top.service[:255] if top else None,
            top_fault=top.fault_type.value if top else None,
            confidence=top.confidence if top else None,
            seconds=inv.seconds,
            prompt_tokens=inv.trace.prompt_tokens,
            completion_tokens=inv.trace.completion_tokens,
            result=inv.model_dump(mode="json"),
        )
        .returning(InvestigationRow.id)
    ).first()
    return row is not None


def fail_investigation(session: Session, inv_id: str, error: str, *, worker: str, max_attempts: int) -> str:
    """Record a failed attempt: back to ``queued`` while attempts remain, else ``failed``. New status."""
    row = session.get(InvestigationRow, inv_id)
    if row is None or row.status != "running" or row.worker != worker[:255]:
        return row.status if row is not None else "missing"
    row.error = error[:2000]
    row.lease_until = None
    if row.attempts >= max_attempts:
        row.status = "failed"
        row.finished_at = utcnow()
    else:
        row.status = "queued"
    return row.status


def requeue_expired(session: Session, *, max_attempts: int, now: datetime | None = None) -> list[str]:
    """Running investigations whose worker vanished (lease expired): queue again, or fail at the limit."""
    now = now or utcnow()
    expired = (InvestigationRow.status == "running") & (InvestigationRow.lease_until < now)
    session.execute(
        update(InvestigationRow)
        .where(expired, InvestigationRow.attempts >= max_attempts)
        .values(status="failed", finished_at=now, lease_until=None, error="worker lost too many times")
    )
    rows = session.execute(
        update(InvestigationRow)
        .where(expired)
        .values(status="queued", lease_until=None, error="worker lost; queued again")
        .returning(InvestigationRow.id)
    ).all()
    return [r[0] for r in rows]


def queued_ids(session: Session, limit: int = 10_000) -> list[str]:
    return list(
        session.scalars(
            select(InvestigationRow.id)
            .where(InvestigationRow.status == "queued")
            .order_by(InvestigationRow.created_at)
            .limit(limit)
        )
    )


def get_investigation_row(session: Session, inv_id: str) -> InvestigationRow:
    return _require(session, InvestigationRow, inv_id, "investigation")


def investigations_of(session: Session, incident_id: str) -> list[InvestigationRow]:
    return list(
        session.scalars(
            select(InvestigationRow)
            .where(InvestigationRow.incident_id == incident_id)
            .order_by(InvestigationRow.created_at.desc(), InvestigationRow.id)
        )
    )


def latest_result(session: Session, incident_id: str) -> Investigation | None:
    """The newest finished investigation of an incident, as the domain model."""
    row = session.scalars(
        select(InvestigationRow)
        .where(InvestigationRow.incident_id == incident_id, InvestigationRow.status == "done")
        .order_by(InvestigationRow.finished_at.desc())
        .limit(1)
    ).first()
    if row is None or row.result is None:
        return None
    return Investigation.model_validate(row.result)


def require_result(session: Session, incident_id: str) -> Investigation:
    get_incident_row(session, incident_id)
    inv = latest_result(session, incident_id)
    if inv is None:
        raise ConflictError(f"incident {incident_id!r} has no finished investigation yet")
    return inv


def store_finished(session: Session, incident_id: str, inv: Investigation, *, trigger: str) -> str:
    """Record an investigation run outside the queue (e.g. by the chat endpoint)."""
    inv_id = create_investigation(session, incident_id, trigger=trigger)
    assert inv_id is not None
    worker = f"inline:{inv_id}"
    claim(session, inv_id, worker=worker, lease_seconds=60)
    finish_investigation(session, inv_id, inv, worker=worker)
    return inv_id


# ---------------------------------------------------------------------------------------- users, tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: str) -> str:
    """Create a user with one token; returns the token (only its hash is stored)."""
    if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
        raise ConflictError(f"user {name!r} already exists")
    user = UserRow(name=name, role=role, disabled=False)
    session.add(user)
    session.flush()
    return issue_token(session, user.id)


def issue_token(session: Session, user_id: int) -> str:
    token = "oa_" + secrets.token_urlsafe(32)
    session.add(TokenRow(user_id=user_id, token_sha256=hash_token(token)))
    return token


def get_user(session: Session, name: str) -> UserRow:
    user = session.scalar(select(UserRow).where(UserRow.name == name))
    if user is None:
        raise NotFoundError(f"user {name!r} does not exist")
    return user


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.name)))


def disable_user(session: Session, name: str) -> None:
    user = get_user(session, name)
    user.disabled = True
    session.execute(
        update(TokenRow)
        .where(TokenRow.user_id == user.id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def user_for_token(session: Session, token: str) -> UserRow | None:
    return session.scalar(
        select(UserRow)
        .join(TokenRow, TokenRow.user_id == UserRow.id)
        .where(
            TokenRow.token_sha256 == hash_token(token),
            TokenRow.revoked_at.is_(None),
            UserRow.disabled.is_(False),
        )
    )


# ------------------------------------------------------------------------------------------------ chat


def get_or_create_conversation(
    session: Session, conversation_id: str | None, *, incident_id: str | None, user_name: str
) -> ConversationRow:
    if conversation_id is not None:
        conv = _require(session, ConversationRow, conversation_id, "conversation")
        if incident_id and not conv.incident_id:
            conv.incident_id = incident_id
        return conv
    conv = ConversationRow(id=new_id(), incident_id=incident_id, user_name=user_name)
    session.add(conv)
    session.flush()
    return conv


def messages_of(session: Session, conversation_id: str) -> list[ChatMessageRow]:
    return list(
        session.scalars(
            select(ChatMessageRow)
            .where(ChatMessageRow.conversation_id == conversation_id)
            .order_by(ChatMessageRow.seq)
        )
    )


def append_message(
    session: Session, conversation_id: str, role: str, content: str, events: list[Any] | None = None
) -> int:
    seq = (
        session.scalar(
            select(func.max(ChatMessageRow.seq)).where(ChatMessageRow.conversation_id == conversation_id)
        )
        or 0
    ) + 1
    session.add(
        ChatMessageRow(conversation_id=conversation_id, seq=seq, role=role, content=content, events=events)
    )
    session.execute(
        update(ConversationRow).where(ConversationRow.id == conversation_id).values(updated_at=utcnow())
    )
    return seq

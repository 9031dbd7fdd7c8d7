"""The investigation queue in the database: queueing, claiming under a lease, renewing, finishing,
failing and requeueing abandoned work, and reading results back.

A worker owns an investigation while its lease lasts; every write that finishes or renews one checks
that the same worker still holds it, so a worker that was given up on cannot overwrite its successor.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from opsagent.domain import Investigation
from opsagent.errors import ConflictError, QueueFullError
from opsagent.store.base import utcnow
from opsagent.store.incidents import get_incident_row
from opsagent.store.models import InvestigationRow
from opsagent.store.sql import insert_ignoring, new_id, require_row

UNFINISHED = ("queued", "running")


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
        insert_ignoring(session, InvestigationRow)
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


def _held_by(inv_id: str, worker: str) -> tuple[ColumnElement[bool], ...]:
    """The investigation is running under ``worker``'s lease (not taken over by another worker)."""
    return (
        InvestigationRow.id == inv_id,
        InvestigationRow.status == "running",
        InvestigationRow.worker == worker[:255],
    )


def renew_lease(session: Session, inv_id: str, *, worker: str, lease_seconds: float) -> bool:
    """Extend a running investigation's lease; False if it was taken over meanwhile."""
    row = session.execute(
        update(InvestigationRow)
        .where(*_held_by(inv_id, worker))
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        .returning(InvestigationRow.id)
    ).first()
    return row is not None


def finish_investigation(session: Session, inv_id: str, inv: Investigation, *, worker: str) -> bool:
    """Store the result; False if another worker took the job over (its result will be stored instead)."""
    top = inv.findings.root_causes[0] if inv.findings.root_causes else None
    row = session.execute(
        update(InvestigationRow)
        .where(*_held_by(inv_id, worker))
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
    return require_row(session, InvestigationRow, inv_id, "investigation")


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

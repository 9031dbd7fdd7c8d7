"""The webhook's write path: store an Alertmanager delivery's alerts, open, resolve or reopen its
incident, and queue its automatic investigation.

Idempotence rests on constraints, not on reads before writes: alerts are inserted with
``ON CONFLICT DO NOTHING`` on (fingerprint, starts_at), incidents on their id, and automatic
investigations on their unique ``trigger_key``. Two concurrent deliveries of the same payload
therefore store it once and queue at most one investigation, whichever commits first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsagent.domain import Alert, Incident
from opsagent.store.base import UTCDateTime, utcnow
from opsagent.store.models import AlertRow, IncidentRow, InvestigationRow
from opsagent.store.sql import new_id

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

"""The webhook's write path: store an Alertmanager delivery's alerts, open, resolve or reopen its
incident, and queue its automatic investigation.

Idempotence rests on constraints, not on reads before writes: alerts are inserted with
``ON CONFLICT DO NOTHING`` on (fingerprint, starts_at), incidents on their id, and automatic
investigations on their unique ``trigger_key``. Two concurrent deliveries of the same payload
therefore store it once and queue at most one investigation, whichever commits first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, or_, select, update
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
        # A new episode is analysed around its own first alert: its alert time and window replace
        # the previous episode's (which stay in its stored investigations).
        self.start_episode = (
            update(IncidentRow)
            .where(IncidentRow.id == bindparam("b_id"))
            .values(
                alert_time=bindparam("b_alert", type_=UTCDateTime),
                window_start=bindparam("b_start", type_=UTCDateTime),
                window_end=bindparam("b_end", type_=UTCDateTime),
            )
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


def _investigation_params(
    inv_id: str, incident_id: str, episode: int, now: datetime, *, added: Sequence[str] = ()
) -> dict[str, Any]:
    # The episode's first investigation is keyed by the episode; a re-investigation for alerts that
    # joined it, by what they added, so a redelivery of the same alerts cannot queue it twice.
    suffix = ":+" + hashlib.sha256("|".join(sorted(added)).encode()).hexdigest()[:16] if added else ""
    return {
        "id": inv_id,
        "incident_id": incident_id,
        "trigger": "alert",
        "trigger_key": f"auto:{incident_id}:{episode}{suffix}",
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


def _episode_params(incident: Incident, began: datetime, now: datetime) -> dict[str, Any]:
    """The new episode's alert time and window: the delivery's window moved to its first new alert."""
    shift = began - incident.alert_time if incident.alert_time is not None else timedelta(0)
    return {
        "b_id": incident.id,
        "b_alert": began,
        "b_start": incident.window.start + shift,
        "b_end": incident.window.end + shift,
        "b_now": now,
    }


def _additions(conn: Connection, incident_id: str, new_alerts: Sequence[Alert]) -> tuple[int, list[str]]:
    """The open incident's episode, and the services and alert names ``new_alerts`` add to it.

    Compared with the episode's other alerts (those since its alert time, and any still firing):
    an alert that joins with a service or a signal the episode had not seen changes what there is to
    explain, so it earns a re-investigation; another pod of the same alert does not.
    """
    row = conn.execute(
        select(IncidentRow.episode, IncidentRow.alert_time, IncidentRow.status).where(
            IncidentRow.id == incident_id
        )
    ).first()
    if row is None or row.status != "open":
        return 0, []
    fresh = {_alert_key(a.fingerprint, a.starts_at) for a in new_alerts}
    query = select(AlertRow.fingerprint, AlertRow.starts_at, AlertRow.name, AlertRow.labels).where(
        AlertRow.incident_id == incident_id
    )
    if row.alert_time is not None:
        query = query.where(or_(AlertRow.starts_at >= row.alert_time, AlertRow.status == "firing"))
    services: set[str] = set()
    names: set[str] = set()
    for fingerprint, starts_at, name, labels in conn.execute(query):
        if _alert_key(fingerprint, starts_at) in fresh:
            continue
        names.add(name)
        known = Alert(fingerprint=fingerprint, name=name, labels=labels or {}, starts_at=starts_at).service
        if known:
            services.add(known)
    added: list[str] = []
    for alert in new_alerts:
        if alert.service and alert.service not in services:
            services.add(alert.service)
            added.append(f"service {alert.service}")
        if alert.name not in names:
            names.add(alert.name)
            added.append(f"signal {alert.name}")
    return int(row.episode), added


def _queue_reinvestigation(
    conn: Connection, st: _IngestStatements, incident_id: str, new_alerts: Sequence[Alert], now: datetime
) -> str | None:
    """Queue an investigation of an open incident whose new alerts add a service or a signal.

    Not when one is still queued: it has not read the incident yet, so it will see these alerts.
    """
    episode, added = _additions(conn, incident_id, new_alerts)
    if not added:
        return None
    waiting = conn.scalar(
        select(func.count())
        .select_from(InvestigationRow)
        .where(InvestigationRow.incident_id == incident_id, InvestigationRow.status == "queued")
    )
    if waiting:
        return None
    inv_id = new_id()
    row = conn.execute(
        st.insert_investigation, _investigation_params(inv_id, incident_id, episode, now, added=added)
    ).first()
    return inv_id if row is not None else None


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
    fresh: dict[str, list[Alert]] = {}
    for i in order:
        incident, result = items[i][0], results[i]
        for alert in incident.alerts:
            key = _alert_key(alert.fingerprint, alert.starts_at)
            if key in stored and key not in claimed:
                claimed.add(key)
                result.new_alerts += 1
                fresh.setdefault(incident.id, []).append(alert)
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
        if episodes:
            conn.execute(
                st.start_episode,
                [
                    _episode_params(
                        items[first_new[incident_id]][0],
                        min(a.starts_at for a in fresh[incident_id]),
                        now,
                    )
                    for incident_id in sorted(episodes)
                ],
            )

    planned: dict[str, tuple[int, str]] = {}
    joined: dict[str, int] = {}
    for i in order:
        incident, auto = items[i]
        result = results[i]
        if auto and (result.created or result.reopened):
            planned[incident.id] = (i, new_id())
        elif auto and result.new_alerts and incident.id not in created and incident.id not in episodes:
            joined.setdefault(incident.id, i)
    for incident_id, i in sorted(joined.items()):
        results[i].investigation_id = _queue_reinvestigation(conn, st, incident_id, fresh[incident_id], now)
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

    fresh = [a for a in incident.alerts if _ingest_alert(conn, st, incident.id, a, now, result)]

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
        if fresh:
            reopened = conn.execute(st.reopen, {"b_id": incident.id, "b_now": now}).first()
            if reopened is not None:
                result.reopened = True
                episode = reopened[0]
                began = min(a.starts_at for a in fresh)
                conn.execute(st.start_episode, _episode_params(incident, began, now))
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
    elif auto_investigate and fresh and not result.created:
        result.investigation_id = _queue_reinvestigation(conn, st, incident.id, fresh, now)
    return result


def _ingest_alert(
    conn: Connection,
    st: _IngestStatements,
    incident_id: str,
    alert: Alert,
    now: datetime,
    result: IngestResult,
) -> bool:
    """Store or resolve one alert; whether it was a firing alert not stored before."""
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
            return False
    row = conn.execute(st.insert_alert, _alert_params(incident_id, alert, now)).first()
    if row is None:
        result.duplicates += 1
        return False
    result.new_alerts += 1
    return alert.status == "firing"

"""The webhook's write path: store an Alertmanager delivery's alerts, open, resolve or reopen its
incident, and queue its automatic investigation.

Idempotence rests on constraints, not on reads before writes: alerts are inserted with
``ON CONFLICT DO NOTHING`` on (fingerprint, starts_at), incidents on their id (a group's later
incident has an id derived from the group's and its number, ``routing``), and automatic
investigations on their unique ``trigger_key``. Two concurrent deliveries of the same payload
therefore store it once and queue at most one investigation, whichever commits first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from opsagent.domain import Alert, Incident
from opsagent.store.base import utcnow
from opsagent.store.ingest_sql import (
    IngestStatements,
    alert_key,
    alert_params,
    episode_params,
    incident_params,
    investigation_params,
    statements_for,
)
from opsagent.store.models import AlertRow, IncidentRow, InvestigationRow
from opsagent.store.routing import DEFAULT_REOPEN_WITHIN, Route, route
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


def _additions(conn: Connection, fresh: dict[str, list[Alert]]) -> dict[str, tuple[int, list[str]]]:
    """Per open incident: its episode, and the services and alert names its ``fresh`` alerts add to it.

    Compared with the episode's other alerts (those since its alert time, and any still firing):
    an alert that joins with a service or a signal the episode had not seen changes what there is to
    explain, so it earns a re-investigation; another pod of the same alert does not. Two queries
    whatever the number of incidents (the batch path's promise).
    """
    ids = sorted(fresh)
    incidents = {
        row.id: row
        for row in conn.execute(
            select(IncidentRow.id, IncidentRow.episode, IncidentRow.alert_time).where(
                IncidentRow.id.in_(ids), IncidentRow.status == "open"
            )
        )
    }
    if not incidents:
        return {}
    new_keys = {alert_key(a.fingerprint, a.starts_at) for alerts in fresh.values() for a in alerts}
    services: dict[str, set[str]] = {i: set() for i in incidents}
    names: dict[str, set[str]] = {i: set() for i in incidents}
    stored = select(
        AlertRow.incident_id,
        AlertRow.fingerprint,
        AlertRow.starts_at,
        AlertRow.status,
        AlertRow.name,
        AlertRow.labels,
    ).where(AlertRow.incident_id.in_(sorted(incidents)))
    for incident_id, fingerprint, starts_at, status, name, labels in conn.execute(stored):
        began = incidents[incident_id].alert_time
        in_episode = began is None or status == "firing" or starts_at >= began
        if not in_episode or alert_key(fingerprint, starts_at) in new_keys:
            continue
        names[incident_id].add(name)
        known = Alert.service_of(labels or {})
        if known:
            services[incident_id].add(known)
    out: dict[str, tuple[int, list[str]]] = {}
    for incident_id, row in incidents.items():
        added: list[str] = []
        for alert in fresh[incident_id]:
            if alert.service and alert.service not in services[incident_id]:
                services[incident_id].add(alert.service)
                added.append(f"service {alert.service}")
            if alert.name not in names[incident_id]:
                names[incident_id].add(alert.name)
                added.append(f"signal {alert.name}")
        if added:
            out[incident_id] = (int(row.episode), added)
    return out


def _queue_reinvestigations(
    conn: Connection, st: IngestStatements, fresh: dict[str, list[Alert]], now: datetime
) -> dict[str, str]:
    """Queue an investigation of each open incident whose new alerts add a service or a signal.

    Not when one is still queued: it has not read the incident yet, so it will see these alerts.
    Returns the investigations queued, by incident.
    """
    wanted = _additions(conn, fresh)
    if not wanted:
        return {}
    waiting = set(
        conn.scalars(
            select(InvestigationRow.incident_id).where(
                InvestigationRow.incident_id.in_(sorted(wanted)), InvestigationRow.status == "queued"
            )
        )
    )
    planned = {i: new_id() for i in sorted(wanted) if i not in waiting}
    if not planned:
        return {}
    rows = [
        investigation_params(inv_id, i, wanted[i][0], now, added=wanted[i][1])
        for i, inv_id in planned.items()
    ]
    queued = {row[0] for row in conn.execute(st.insert_investigation, rows)}
    return {i: inv_id for i, inv_id in planned.items() if inv_id in queued}


def ingest_batch(
    session: Session,
    items: Sequence[tuple[Incident, bool]],
    *,
    now: datetime | None = None,
    reopen_within: timedelta = DEFAULT_REOPEN_WITHIN,
) -> list[IngestResult]:
    """``ingest_incident`` for several deliveries (incident, auto_investigate) in one transaction.

    Deliveries whose alerts are all firing, the bulk of an alert storm, are stored with a handful of
    set-based statements whatever their number (one multi-row INSERT each for incidents, alerts and
    investigations, one UPDATE for windows, one for reopening): a few round trips per batch instead
    of four or five per delivery. Deliveries with resolved alerts follow, one by one. The deliveries
    of one batch were in flight together, so any order among them is an order they could have
    arrived in; the results are those of storing them one after the other in that order.
    Each delivery goes to its group's incident as ``routing.route`` says (the reopen horizon).
    """
    now = now or utcnow()
    results = [IngestResult(incident_id=incident.id) for incident, _ in items]
    firing = [
        i
        for i, (incident, _) in enumerate(items)
        if incident.alerts and all(a.status == "firing" for a in incident.alerts)
    ]
    if firing:
        ways = route(session.connection(), [items[i][0] for i in firing], now, reopen_within)
        routed = list(items)
        for i, way in zip(firing, ways, strict=True):
            routed[i] = (way.incident, items[i][1])
            results[i].incident_id = way.incident.id
        _ingest_firing(session, routed, firing, results, now, {w.incident.id: w for w in ways})
    done = set(firing)
    for i, (incident, auto) in enumerate(items):
        if i not in done:
            results[i] = ingest_incident(
                session, incident, auto_investigate=auto, now=now, reopen_within=reopen_within
            )
    return results


def _ingest_firing(
    session: Session,
    items: Sequence[tuple[Incident, bool]],
    order: list[int],
    results: list[IngestResult],
    now: datetime,
    ways: dict[str, Route],
) -> None:
    st = statements_for(session)
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
            [
                incident_params(items[i][0], now, firing=True, lineage=ways[incident_id].columns())
                for incident_id, i in sorted(first_of.items())
            ],
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
                alert_key(alert.fingerprint, alert.starts_at), alert_params(incident.id, alert, now)
            )
    stored = {
        alert_key(fp, starts_at)
        for fp, starts_at in conn.execute(st.insert_alerts, [alert_rows[k] for k in sorted(alert_rows)])
    }
    claimed: set[tuple[str, datetime]] = set()
    grown: dict[str, tuple[datetime, datetime]] = {}
    first_new: dict[str, int] = {}
    fresh: dict[str, list[Alert]] = {}
    for i in order:
        incident, result = items[i][0], results[i]
        for alert in incident.alerts:
            key = alert_key(alert.fingerprint, alert.starts_at)
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
                    episode_params(
                        items[first_new[incident_id]][0],
                        min(a.starts_at for a in fresh[incident_id]),
                        now,
                        ways[incident_id].reason,
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
    if joined:
        again = _queue_reinvestigations(conn, st, {i: fresh[i] for i in joined}, now)
        for incident_id, inv_id in again.items():
            results[joined[incident_id]].investigation_id = inv_id
    if planned:
        rows = [
            investigation_params(inv_id, incident_id, episodes.get(incident_id, 1), now)
            for incident_id, (_, inv_id) in sorted(planned.items())
        ]
        queued = {row[0] for row in conn.execute(st.insert_investigation, rows)}
        for i, inv_id in planned.values():
            results[i].investigation_id = inv_id if inv_id in queued else None


def ingest_incident(
    session: Session,
    incident: Incident,
    *,
    auto_investigate: bool,
    now: datetime | None = None,
    reopen_within: timedelta = DEFAULT_REOPEN_WITHIN,
) -> IngestResult:
    """Store an incident's alerts (from one webhook delivery); queue its automatic investigation.

    Firing alerts already stored are counted as duplicates; resolved alerts mark the stored alert
    resolved (or are stored resolved). An incident whose alerts are all resolved is resolved; a
    resolved incident with a new firing alert is reopened as a new episode, or, when it resolved
    longer than ``reopen_within`` ago, the new firing opens a new incident (``routing.route``).
    """
    now = now or utcnow()
    st = statements_for(session)
    conn = session.connection()
    way = route(conn, [incident], now, reopen_within)[0]
    incident = way.incident
    result = IngestResult(incident_id=incident.id)
    firing = [a for a in incident.alerts if a.status == "firing"]
    inserted = conn.execute(
        st.insert_incident, incident_params(incident, now, firing=bool(firing), lineage=way.columns())
    ).first()
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
                conn.execute(st.start_episode, episode_params(incident, began, now, way.reason))
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
            st.insert_investigation, investigation_params(inv_id, incident.id, episode, now)
        ).first()
        result.investigation_id = inv_id if row is not None else None
    elif auto_investigate and fresh and not result.created:
        result.investigation_id = _queue_reinvestigations(conn, st, {incident.id: fresh}, now).get(
            incident.id
        )
    return result


def _ingest_alert(
    conn: Connection,
    st: IngestStatements,
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
    row = conn.execute(st.insert_alert, alert_params(incident_id, alert, now)).first()
    if row is None:
        result.duplicates += 1
        return False
    result.new_alerts += 1
    return alert.status == "firing"

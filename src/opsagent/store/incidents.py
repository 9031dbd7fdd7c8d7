"""Incidents as stored: the chat's question incidents, reading one back as the domain model, listing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from opsagent.domain import Alert, Incident, TimeWindow
from opsagent.store.models import AlertRow, IncidentRow
from opsagent.store.quiet import quiet_since
from opsagent.store.sql import insert_ignoring, require_row


def store_question_incident(session: Session, incident: Incident) -> None:
    """Store an incident that came from a chat question (no alerts)."""
    session.execute(
        insert_ignoring(session, IncidentRow)
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
    return require_row(session, IncidentRow, incident_id, "incident")


def alerts_of(session: Session, incident_id: str) -> list[AlertRow]:
    return list(
        session.scalars(
            select(AlertRow)
            .where(AlertRow.incident_id == incident_id)
            .order_by(AlertRow.starts_at, AlertRow.id)
        )
    )


def _in_episode(alert: Alert, began: datetime | None) -> bool:
    """Whether an alert belongs to the current episode: it started with it or later, or still fires."""
    return began is None or alert.status == "firing" or alert.starts_at >= began


def episode_note(row: IncidentRow, alerts: list[Alert]) -> str:
    """Which firing of the group the incident's current episode is, why, and which alerts joined it."""
    at = row.alert_time.strftime("%Y-%m-%d %H:%M:%S UTC") if row.alert_time else "its first alert"
    why = row.episode_reason
    if row.episode <= 1 and row.follows:
        note = (
            f"A new incident: {why or 'its alert group had resolved beyond the reopen horizon'}, so it "
            f"starts a new incident rather than reopening {row.follows}; analysed around its first "
            f"alert ({at})."
        )
    elif row.episode <= 1:
        note = f"A new incident: the first firing of its alert group, analysed around its first alert ({at})."
    else:
        began = row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        note = (
            f"Episode {row.episode} of a reopened incident: the same alert group fired again after it "
            f"had resolved{f' ({why})' if why else ''}, so it reopens this incident (first opened "
            f"{began}) rather than starting a new one; this episode is analysed around its own first "
            f"alert ({at}), not the first episode's."
        )
    services: set[str] = set()
    names: set[str] = set()
    joined: list[str] = []
    for alert in sorted(alerts, key=lambda a: a.starts_at):
        added = [f"service {alert.service}"] if alert.service and alert.service not in services else []
        added += [f"signal {alert.name}"] if alert.name not in names else []
        if (services or names) and added:
            joined.append(f"{alert.name} at {alert.starts_at.strftime('%H:%M:%S')} ({', '.join(added)})")
        services |= {alert.service} if alert.service else set()
        names.add(alert.name)
    if joined:
        note += " Alerts that joined it later and were investigated again: " + "; ".join(joined[:5]) + "."
    return note


def episode_alerts(row: IncidentRow, alert_rows: list[AlertRow]) -> list[Alert]:
    """The incident's current episode's alerts as domain alerts: those that started with the episode
    or later, and those still firing (all of them when none does)."""
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
        for a in alert_rows
    ]
    return [a for a in alerts if _in_episode(a, row.alert_time)] or alerts


def current_episode_note(row: IncidentRow, alert_rows: list[AlertRow]) -> str:
    """The report's first note for an Alertmanager incident ("" for others), from rows already read."""
    return episode_note(row, episode_alerts(row, alert_rows)) if row.origin == "alertmanager" else ""


def load_incident(session: Session, incident_id: str) -> Incident:
    """The domain ``Incident`` as stored, for ``pipeline.investigate``: its current episode's alerts
    (those that started with the episode or later, and those still firing), time and window."""
    row = get_incident_row(session, incident_id)
    alerts = episode_alerts(row, alerts_of(session, incident_id))
    origin = row.origin if row.origin in ("alertmanager", "chat", "recorded", "manual") else "manual"
    quiet = None
    if row.origin == "alertmanager" and row.alert_time is not None:
        quiet = quiet_since(
            session,
            row.id,
            alert_time=row.alert_time,
            window_start=row.window_start,
            services={a.service for a in alerts if a.service},
        )
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
        episode=row.episode,
        episode_note=episode_note(row, alerts) if row.origin == "alertmanager" else "",
        quiet_since=quiet.since if quiet else None,
        quiet_after=quiet.what if quiet else "",
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

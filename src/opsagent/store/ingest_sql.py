"""The webhook's SQL: statements built once per dialect, and the row parameters they take.

Building and compiling a statement per request costs more than executing it, so ``ingest`` takes
them from here (``statements_for``) ready-made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsagent.domain import Alert, Incident
from opsagent.store.base import UTCDateTime
from opsagent.store.models import AlertRow, IncidentRow, InvestigationRow


class IngestStatements:
    """The webhook's statements, built once per dialect: building and compiling a statement per
    request costs more than executing it."""

    def __init__(self, dialect: str) -> None:
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # No conflict target: an incident's id and its group's generation are both unique, and the
        # same incident delivered twice at once conflicts on either, whichever is checked first.
        self.insert_incident = ins(IncidentRow).on_conflict_do_nothing().returning(IncidentRow.id)
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
                episode_reason=bindparam("b_reason"),
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


_STATEMENTS: dict[str, IngestStatements] = {}


def statements_for(session: Session) -> IngestStatements:
    dialect = session.get_bind().dialect.name
    stmts = _STATEMENTS.get(dialect)
    if stmts is None:
        stmts = _STATEMENTS[dialect] = IngestStatements(dialect)
    return stmts


def incident_params(
    incident: Incident, now: datetime, *, firing: bool, lineage: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A new incident row; ``lineage`` (``routing.Route.columns``): its group, generation and why."""
    return {
        "group_id": None,
        "generation": 1,
        "follows": None,
        "episode_reason": None,
        **(lineage or {}),
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


def alert_params(incident_id: str, alert: Alert, now: datetime) -> dict[str, Any]:
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


def investigation_params(
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


def alert_key(fingerprint: str, starts_at: datetime) -> tuple[str, datetime]:
    # Naive times are UTC (as UTCDateTime stores them); the database hands back aware UTC times.
    aware = starts_at.replace(tzinfo=UTC) if starts_at.tzinfo is None else starts_at.astimezone(UTC)
    return fingerprint, aware


def episode_params(incident: Incident, began: datetime, now: datetime, reason: str = "") -> dict[str, Any]:
    """The new episode's alert time and window: the delivery's window moved to its first new alert;
    and why it reopened (``routing.Route.reason``)."""
    shift = began - incident.alert_time if incident.alert_time is not None else timedelta(0)
    return {
        "b_id": incident.id,
        "b_alert": began,
        "b_start": incident.window.start + shift,
        "b_end": incident.window.end + shift,
        "b_now": now,
        "b_reason": reason or None,
    }

"""Which incident a webhook delivery belongs to: its alert group's latest incident, or a new one.

One incident per Alertmanager group at a time. A delivery goes to its group's latest incident when
that incident is open, or resolved within the reopen horizon (a new firing alert then reopens it as
a new episode, in ``ingest``). Alertmanager reuses a groupKey for as long as its route exists, so a
group that fires again beyond the horizon opens a new incident instead: the group's next
generation, whose id derives from the group's and the generation. Concurrent deliveries of the same
new firing therefore choose the same id, and the incidents' primary key stores it once.

Only a delivery that brings a firing alert not stored yet opens a new incident: a redelivery of
stored alerts, or of the old incident's resolved ones, stays with the incident that has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from opsagent.domain import Incident
from opsagent.store.ingest_sql import alert_key
from opsagent.store.models import AlertRow, IncidentRow

DEFAULT_REOPEN_WITHIN = timedelta(hours=24)
FIRST_FIRING = "the first firing of its alert group"


@dataclass(frozen=True)
class Route:
    """A delivery as it will be stored: with the id of its incident, and that incident's lineage."""

    incident: Incident
    group_id: str | None = None
    generation: int = 1
    follows: str | None = None
    # Why the episode this delivery opens, if it opens one, is a new incident or a reopened one.
    reason: str = ""

    def columns(self) -> dict[str, Any]:
        """The lineage columns of a new incident row."""
        return {
            "group_id": self.group_id,
            "generation": self.generation,
            "follows": self.follows,
            "episode_reason": self.reason or None,
        }


def successor_id(group_id: str, generation: int) -> str:
    """The id of a group's incident of that generation (the first keeps the group's own id)."""
    return group_id if generation <= 1 else f"{group_id}-{generation}"


def span(delta: timedelta) -> str:
    """A duration as people say it: "3 days", "5 hours", "40 minutes", "30 seconds"."""
    seconds = max(delta.total_seconds(), 0.0)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= 2 * size:
            return f"{round(seconds / size)} {unit}s"
    return f"{round(seconds)} seconds"


def horizon_text(reopen_within: timedelta) -> str:
    minutes = reopen_within.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes:g} min"


def route(
    conn: Connection, deliveries: Sequence[Incident], now: datetime, reopen_within: timedelta
) -> list[Route]:
    """Each delivery routed to its incident, in order (two queries whatever their number)."""
    groups = sorted({d.id for d in deliveries if d.group_key is not None})
    latest = _latest(conn, groups) if groups else {}
    horizon = horizon_text(reopen_within)
    stale = {
        group
        for group, row in latest.items()
        if row.status == "resolved" and row.resolved_at is not None and now - row.resolved_at > reopen_within
    }
    stored = _stored(conn, [d for d in deliveries if d.id in stale]) if stale else set()
    out: list[Route] = []
    for delivery in deliveries:
        row = latest.get(delivery.id)
        if delivery.group_key is None:
            out.append(Route(delivery))
        elif row is None:
            out.append(Route(delivery, delivery.id, 1, None, FIRST_FIRING))
        elif delivery.id in stale and any(
            a.status == "firing" and alert_key(a.fingerprint, a.starts_at) not in stored
            for a in delivery.alerts
        ):
            generation = row.generation + 1
            gap = span(now - row.resolved_at)
            out.append(
                Route(
                    delivery.model_copy(update={"id": successor_id(delivery.id, generation)}),
                    delivery.id,
                    generation,
                    row.id,
                    f"its alert group last resolved {gap} ago, beyond the {horizon} reopen horizon",
                )
            )
        else:
            reason = ""
            if row.status == "resolved" and row.resolved_at is not None:
                gap = span(now - row.resolved_at)
                reason = f"it fired again {gap} after it resolved, within the {horizon} reopen horizon"
            routed = delivery if row.id == delivery.id else delivery.model_copy(update={"id": row.id})
            out.append(Route(routed, delivery.id, row.generation, row.follows, reason))
    return out


def _latest(conn: Connection, groups: list[str]) -> dict[str, Any]:
    """Per group: its latest incident (highest generation)."""
    top = (
        select(IncidentRow.group_id, func.max(IncidentRow.generation).label("generation"))
        .where(IncidentRow.group_id.in_(groups))
        .group_by(IncidentRow.group_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            IncidentRow.group_id,
            IncidentRow.id,
            IncidentRow.generation,
            IncidentRow.status,
            IncidentRow.resolved_at,
            IncidentRow.follows,
        ).join(
            top,
            and_(IncidentRow.group_id == top.c.group_id, IncidentRow.generation == top.c.generation),
        )
    )
    return {row.group_id: row for row in rows}


def _stored(conn: Connection, deliveries: list[Incident]) -> set[tuple[str, datetime]]:
    """Which of these deliveries' firing alerts are stored already (by fingerprint and start)."""
    fingerprints = sorted({a.fingerprint for d in deliveries for a in d.alerts if a.status == "firing"})
    if not fingerprints:
        return set()
    query = select(AlertRow.fingerprint, AlertRow.starts_at).where(AlertRow.fingerprint.in_(fingerprints))
    return {alert_key(fp, starts_at) for fp, starts_at in conn.execute(query)}

"""Since when the system has been quiet before an episode: the last earlier episode, or related
incident, that resolved inside the episode's window.

An investigation compares its episode with a normal period before the alert. When the same alert
group fired and resolved a few minutes earlier (a reopened incident), or another incident about the
same services did, that earlier trouble lies inside the window: taken as normal it hides this fault's
shift, taken as part of the incident it is named as this fault's cause. The store knows when each
alert fired and resolved, so it can say where the quiet began; ``evidence.coverage.after_quiet``
starts the normal period after it.

Which incidents count:
- every earlier episode of the same incident (the same alert group): it is the same trouble again;
- another incident whose alerts name one of this episode's services: its fault shows in the series
  of a service this investigation ranks.
An incident that shares no service is left out: a store may serve many systems, and an unrelated
incident elsewhere would otherwise shorten every normal period; its series are not this episode's
services' (the engine ranks the alerting services and their neighbours).
An alert still firing when this episode began is not a bound either: there is no quiet after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from opsagent.domain import Alert
from opsagent.store.models import AlertRow, IncidentRow


@dataclass(frozen=True)
class Quiet:
    """When the last related trouble before an episode resolved, and what it was."""

    since: datetime
    what: str


def quiet_since(
    session: Session,
    incident_id: str,
    *,
    alert_time: datetime,
    window_start: datetime,
    services: set[str],
) -> Quiet | None:
    """The latest resolution in ``(window_start, alert_time]`` of an alert of an earlier episode of
    ``incident_id``, or of another incident naming one of ``services``; None when nothing resolved there."""
    rows = session.execute(
        select(AlertRow.incident_id, AlertRow.labels, AlertRow.ends_at, AlertRow.resolved_at)
        .where(
            AlertRow.status == "resolved",
            AlertRow.starts_at < alert_time,
            or_(AlertRow.ends_at > window_start, AlertRow.resolved_at > window_start),
        )
        .order_by(AlertRow.id)
    ).all()
    best: tuple[datetime, str] | None = None
    for other_id, labels, ends_at, resolved_at in rows:
        # Alertmanager's endsAt is when Prometheus stopped firing it; the receipt of the resolved
        # notification (``resolved_at``) comes a group interval later and is used only without it.
        ended = ends_at or resolved_at
        if ended is None or not window_start < ended <= alert_time:
            continue
        if other_id != incident_id and Alert.service_of(labels or {}) not in services:
            continue
        if best is None or ended > best[0]:
            best = (ended, other_id)
    if best is None:
        return None
    ended, other_id = best
    if other_id == incident_id:
        return Quiet(ended, "the previous episode of this incident")
    title = session.scalar(select(IncidentRow.title).where(IncidentRow.id == other_id)) or other_id
    return Quiet(ended, f"incident {other_id} ({title[:80]}), which shares a service with this one")

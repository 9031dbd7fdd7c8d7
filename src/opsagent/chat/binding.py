"""Which open incident a chat question is about, if any.

A question that names a service of an open incident (its service, or a service or app label of one
of its alerts) or its alert's name attaches to that incident: "why is checkout returning 500s?"
while HighErrorRate fires for checkout is about that incident, not a fresh look at "now". Among
several, the one matching most names wins, then the newest. No match: the caller investigates now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsagent.store.models import AlertRow, IncidentRow

# Alert labels that name a service in the usual Prometheus setups.
SERVICE_LABELS = ("service", "app", "job", "deployment", "container")
# How many open incidents are considered (the newest): older open ones are rarely what is asked about.
CANDIDATES = 200


@dataclass(frozen=True)
class Candidate:
    id: str
    title: str
    names: frozenset[str]


@dataclass(frozen=True)
class Binding:
    incident_id: str
    title: str
    matched: tuple[str, ...]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9][a-z0-9._:-]*[a-z0-9]|[a-z0-9]", text.lower()))


def best_match(message: str, candidates: list[Candidate]) -> Binding | None:
    """The candidate whose names the message mentions most (candidates newest first); pure."""
    words = _words(message)
    best: tuple[int, Candidate, tuple[str, ...]] | None = None
    for cand in candidates:
        hits = tuple(sorted(n for n in cand.names if n in words))
        if hits and (best is None or len(hits) > best[0]):
            best = (len(hits), cand, hits)
    if best is None:
        return None
    return Binding(incident_id=best[1].id, title=best[1].title, matched=best[2])


def open_candidates(session: Session, limit: int = CANDIDATES) -> list[Candidate]:
    """Open incidents, newest first, with the service and alert names they can be asked about by."""
    rows = list(
        session.execute(
            select(IncidentRow.id, IncidentRow.title, IncidentRow.service)
            .where(IncidentRow.status == "open")
            .order_by(IncidentRow.created_at.desc())
            .limit(limit)
        )
    )
    if not rows:
        return []
    names: dict[str, set[str]] = {r.id: {r.service.lower()} if r.service else set() for r in rows}
    for alert in session.execute(
        select(AlertRow.incident_id, AlertRow.name, AlertRow.labels).where(
            AlertRow.incident_id.in_(list(names))
        )
    ):
        found = names[alert.incident_id]
        found.add(alert.name.lower())
        labels = alert.labels or {}
        found.update(str(labels[k]).lower() for k in SERVICE_LABELS if labels.get(k))
    return [
        Candidate(id=r.id, title=r.title, names=frozenset(n for n in names[r.id] if len(n) > 1)) for r in rows
    ]


def incident_for_question(session: Session, message: str) -> Binding | None:
    return best_match(message, open_candidates(session))

"""The reopen horizon, through the webhook's ingest (the single delivery and the group-commit batch) on
SQLite and PostgreSQL: an alert group that fires again within the horizon after it resolved reopens
its incident as a new episode; beyond it, the firing opens a new incident with its own episode 1,
its own investigation, and a note that says why. Redelivery stays idempotent on both paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from opsagent.domain import Incident
from opsagent.intake import incident_from_alertmanager, incident_id_for_group, parse_alertmanager
from opsagent.store import Store, incidents, investigations
from opsagent.store import ingest as ingest_store
from opsagent.store.models import IncidentRow

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HORIZON = timedelta(hours=24)
GROUP_KEY = '{}:{alertname="HighErrorRate"}'
GROUP = incident_id_for_group(GROUP_KEY)

Ingest = Callable[..., list[ingest_store.IngestResult]]


def delivery(*alerts: tuple[str, datetime, str]) -> Incident:
    """One Alertmanager delivery of the checkout group, through intake as the webhook reads it: alerts
    as (fingerprint, startsAt, status)."""
    items = [
        {
            "status": status,
            "labels": {"alertname": "HighErrorRate", "service": "checkout"},
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(minutes=5)).isoformat() if status == "resolved" else None,
            "fingerprint": fp,
        }
        for fp, starts, status in alerts
    ]
    status = "firing" if any(a["status"] == "firing" for a in items) else "resolved"
    body = {"version": "4", "groupKey": GROUP_KEY, "status": status, "alerts": items}
    return incident_from_alertmanager(parse_alertmanager(body))


def single(store: Store, *deliveries: Incident, now: datetime) -> list[ingest_store.IngestResult]:
    out = []
    for d in deliveries:
        with store.session() as s:
            out.append(
                ingest_store.ingest_incident(s, d, auto_investigate=True, now=now, reopen_within=HORIZON)
            )
    return out


def batch(store: Store, *deliveries: Incident, now: datetime) -> list[ingest_store.IngestResult]:
    with store.session() as s:
        return ingest_store.ingest_batch(s, [(d, True) for d in deliveries], now=now, reopen_within=HORIZON)


PATHS = pytest.mark.parametrize("ingest", [single, batch], ids=["single", "batch"])


def fire_and_resolve(ingest: Ingest, store: Store) -> None:
    """The group's first incident: fires at T0, resolves five minutes later (as received then)."""
    first = ingest(store, delivery(("a1", T0, "firing")), now=T0)
    assert first[0].created and first[0].incident_id == GROUP
    resolved = ingest(store, delivery(("a1", T0, "resolved")), now=T0 + timedelta(minutes=5))
    assert resolved[0].resolved == 1
    with store.read() as s:
        assert incidents.get_incident_row(s, GROUP).status == "resolved"


def rows(store: Store) -> list[IncidentRow]:
    with store.read() as s:
        found = list(s.scalars(select(IncidentRow).order_by(IncidentRow.generation)))
        s.expunge_all()  # readable after the read-only session rolls back
        return found


def note(store: Store, incident_id: str) -> str:
    with store.read() as s:
        return incidents.load_incident(s, incident_id).episode_note


def trigger_keys(store: Store, incident_id: str) -> list[str]:
    with store.read() as s:
        return sorted(str(r.trigger_key) for r in investigations.investigations_of(s, incident_id))


@PATHS
def test_within_the_horizon_the_incident_reopens_as_episode_2(ingest: Ingest, store: Store) -> None:
    fire_and_resolve(ingest, store)
    again = T0 + timedelta(hours=1)
    result = ingest(store, delivery(("a2", again, "firing")), now=again)[0]

    assert result.incident_id == GROUP and result.reopened and not result.created
    assert [(r.id, r.episode, r.status) for r in rows(store)] == [(GROUP, 2, "open")]
    assert trigger_keys(store, GROUP) == [f"auto:{GROUP}:1", f"auto:{GROUP}:2"]
    text = note(store, GROUP)
    assert text.startswith("Episode 2 of a reopened incident: the same alert group fired again after it")
    assert "(it fired again 55 minutes after it resolved, within the 24 h reopen horizon)" in text


@PATHS
def test_beyond_the_horizon_the_group_opens_a_new_incident(ingest: Ingest, store: Store) -> None:
    fire_and_resolve(ingest, store)
    later = T0 + timedelta(days=3, minutes=5)
    # Alertmanager forgets a group's resolved alerts once it has sent them: the delivery days later
    # carries only the new firing alert (all firing: the batch path's set-based statements).
    result = ingest(store, delivery(("a2", later, "firing")), now=later)[0]

    new_id = result.incident_id
    assert new_id != GROUP and result.created and not result.reopened and result.investigation_id
    old, new = rows(store)
    # The old incident is left as it was: resolved, its one episode, its one investigation.
    assert (old.id, old.status, old.episode, old.alert_time) == (GROUP, "resolved", 1, T0)
    assert trigger_keys(store, GROUP) == [f"auto:{GROUP}:1"]
    # The new one is analysed around its own alert, as episode 1, with its own investigation.
    assert (new.status, new.episode, new.alert_time, new.follows) == ("open", 1, later, GROUP)
    assert new.window_start == later - timedelta(hours=2)
    assert trigger_keys(store, new_id) == [f"auto:{new_id}:1"]
    with store.read() as s:
        assert [a.fingerprint for a in incidents.alerts_of(s, new_id)] == ["a2"]
        assert [a.fingerprint for a in incidents.alerts_of(s, GROUP)] == ["a1"]
    assert new.episode_reason == "its alert group last resolved 3 days ago, beyond the 24 h reopen horizon"
    assert note(store, new_id).startswith(
        "A new incident: its alert group last resolved 3 days ago, beyond the 24 h reopen horizon, "
        f"so it starts a new incident rather than reopening {GROUP}"
    )

    # The group's latest incident is now the new one: a firing within the horizon of its resolution
    # reopens it (not the old one), and one beyond opens a third.
    ingest(store, delivery(("a2", later, "resolved")), now=later + timedelta(minutes=10))
    soon = later + timedelta(hours=2)
    assert ingest(store, delivery(("a3", soon, "firing")), now=soon)[0].incident_id == new_id
    ingest(store, delivery(("a3", soon, "resolved")), now=soon + timedelta(minutes=10))
    weeks = soon + timedelta(weeks=2)
    third = ingest(store, delivery(("a4", weeks, "firing")), now=weeks)[0]
    assert third.created and third.incident_id not in (GROUP, new_id)
    assert [(r.generation, r.episode, r.follows) for r in rows(store)] == [
        (1, 1, None),
        (2, 2, GROUP),
        (3, 1, new_id),
    ]


@PATHS
def test_redelivery_beyond_the_horizon_opens_one_new_incident(ingest: Ingest, store: Store) -> None:
    fire_and_resolve(ingest, store)
    later = T0 + timedelta(days=2)
    fresh = delivery(("a2", later, "firing"))
    # Delivered twice at once (in one batch on the batch path), then again minutes later with the old
    # incident's resolved alert beside it (a delivery of mixed states, stored one by one).
    first = ingest(store, fresh, fresh, now=later)
    again = ingest(
        store, delivery(("a2", later, "firing"), ("a1", T0, "resolved")), now=later + timedelta(minutes=4)
    )
    # The old incident's resolution delivered again opens nothing either.
    old = ingest(store, delivery(("a1", T0, "resolved")), now=later + timedelta(minutes=5))

    new_id = first[0].incident_id
    assert [r.incident_id for r in first + again] == [new_id] * 3 and new_id != GROUP
    assert [(r.created, r.new_alerts, bool(r.investigation_id)) for r in first + again] == [
        (True, 1, True),
        (False, 0, False),
        (False, 0, False),
    ]
    assert not old[0].created and (old[0].new_alerts, old[0].resolved, old[0].duplicates) == (0, 0, 1)
    assert [(r.id, r.status) for r in rows(store)] == [(GROUP, "resolved"), (new_id, "open")]
    assert trigger_keys(store, new_id) == [f"auto:{new_id}:1"]


def test_a_zero_horizon_makes_every_firing_after_a_resolution_a_new_incident(store: Store) -> None:
    with store.session() as s:
        ingest_store.ingest_incident(s, delivery(("a1", T0, "firing")), auto_investigate=False, now=T0)
    with store.session() as s:
        ingest_store.ingest_incident(s, delivery(("a1", T0, "resolved")), auto_investigate=False, now=T0)
    soon = T0 + timedelta(seconds=30)
    with store.session() as s:
        result = ingest_store.ingest_incident(
            s, delivery(("a2", soon, "firing")), auto_investigate=False, now=soon, reopen_within=timedelta(0)
        )
    assert result.created and result.incident_id != GROUP
    assert "beyond the 0 min reopen horizon" in note(store, result.incident_id)


def test_a_database_from_before_the_horizon_keeps_its_incidents_as_their_groups_first(store: Store) -> None:
    """Migration 0004 on a database at 0003 holding an incident: it becomes its group's first, so a
    late firing follows it and an early one reopens it, as for incidents stored since."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import column, insert, table

    from opsagent.store.base import UTCDateTime
    from opsagent.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    old = table(
        "incidents",
        *(column(c) for c in ("id", "title", "origin", "group_key", "status", "episode")),
        *(column(c, UTCDateTime) for c in ("window_start", "window_end", "alert_time")),
        *(column(c, UTCDateTime) for c in ("created_at", "updated_at", "resolved_at")),
    )
    stamps = {"window_start": T0 - timedelta(hours=2), "window_end": T0 + timedelta(minutes=30)}
    stamps |= {"alert_time": T0, "created_at": T0, "updated_at": T0, "resolved_at": T0}
    with store.engine.begin() as conn:
        conn.execute(
            insert(old).values(
                id=GROUP,
                title="old",
                origin="alertmanager",
                group_key="g",
                status="resolved",
                episode=1,
                **stamps,
            )
        )
    store.migrate()

    (row,) = rows(store)
    assert (row.group_id, row.generation, row.follows) == (GROUP, 1, None)
    later = T0 + timedelta(days=2)
    result = single(store, delivery(("a2", later, "firing")), now=later)[0]
    assert result.created and result.incident_id != GROUP
    assert [(r.id, r.follows) for r in rows(store)] == [(GROUP, None), (result.incident_id, GROUP)]

"""Alerts joining an open incident, through the batch ingest (the webhook's path) on SQLite and
PostgreSQL: one re-investigation when they add a service or an alert name, none otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsagent.domain import Alert, Incident, TimeWindow
from opsagent.store import Store, investigations
from opsagent.store import ingest as ingest_store

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def delivery(*alerts: tuple[str, str, str, int]) -> Incident:
    """One delivery of group "shop": alerts as (fingerprint, alertname, service, minute)."""
    items = [
        Alert(
            fingerprint=fp,
            name=name,
            labels={"alertname": name, "service": service, "team": "shop"},
            starts_at=T0 + timedelta(minutes=minute),
        )
        for fp, name, service, minute in alerts
    ]
    first = min(a.starts_at for a in items)
    return Incident(
        id="inc-shop",
        title="shop",
        origin="alertmanager",
        group_key="shop",
        alerts=items,
        window=TimeWindow(start=first - timedelta(hours=2), end=first + timedelta(minutes=30)),
        alert_time=first,
    )


def ingest(store: Store, *deliveries: Incident) -> list[ingest_store.IngestResult]:
    with store.session() as s:
        return ingest_store.ingest_batch(s, [(d, True) for d in deliveries])


def finish_all(store: Store) -> None:
    """Mark every queued investigation finished, as a worker would (a queued one would see new alerts)."""
    from sqlalchemy import update

    from opsagent.store.models import InvestigationRow

    with store.session() as s:
        s.execute(update(InvestigationRow).values(status="done"))


def keys(store: Store) -> list[str]:
    with store.read() as s:
        return sorted(str(r.trigger_key) for r in investigations.investigations_of(s, "inc-shop"))


def test_joining_alerts_are_investigated_again_only_when_they_add_something(store: Store) -> None:
    first = ingest(store, delivery(("a1", "HighLatency", "payments", 0)))
    assert first[0].created and first[0].investigation_id
    finish_all(store)

    # Another pod's alert, same service and name; then the same again in one batch: nothing new.
    same = ingest(
        store, delivery(("a2", "HighLatency", "payments", 1)), delivery(("a2", "HighLatency", "payments", 1))
    )
    assert not any(r.investigation_id for r in same)
    assert keys(store) == ["auto:inc-shop:1"]

    # A new service and a new alert name, while an unrelated delivery shares the batch.
    joined = ingest(
        store,
        delivery(("a3", "HighErrorRate", "orders", 2)),
        delivery(("a4", "HighLatency", "payments", 2)),
    )
    assert joined[0].investigation_id and not joined[1].investigation_id
    assert len(keys(store)) == 2 and keys(store)[1].startswith("auto:inc-shop:1:+")

    # While that re-investigation is still queued, more additions wait for it: it will read them.
    more = ingest(store, delivery(("a5", "HighErrorRate", "users", 3)))
    assert not more[0].investigation_id and len(keys(store)) == 2

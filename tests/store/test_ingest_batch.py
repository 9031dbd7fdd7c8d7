"""The webhook's group commit stores a batch of deliveries with set-based statements: the results must be
those of storing the deliveries one after the other (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsagent.domain import Alert, Incident, TimeWindow
from opsagent.store import Store, incidents, investigations
from opsagent.store import ingest as ingest_store

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def delivery(group: str, *alerts: tuple[str, int, str]) -> Incident:
    """One Alertmanager delivery for ``group``: alerts as (fingerprint, minute, status)."""
    items = [
        Alert(
            fingerprint=fp,
            name="HighErrorRate",
            status="firing" if status == "firing" else "resolved",
            labels={"alertname": "HighErrorRate", "service": group},
            starts_at=T0 + timedelta(minutes=minute),
            ends_at=T0 + timedelta(minutes=minute + 5) if status == "resolved" else None,
        )
        for fp, minute, status in alerts
    ]
    first = min(a.starts_at for a in items)
    return Incident(
        id=f"inc-{group}",
        title=group,
        origin="alertmanager",
        group_key=group,
        alerts=items,
        window=TimeWindow(start=first - timedelta(hours=2), end=first + timedelta(minutes=30)),
        alert_time=first,
    )


def ingest(store: Store, *deliveries: Incident, auto: bool = True) -> list[ingest_store.IngestResult]:
    with store.session() as s:
        return ingest_store.ingest_batch(s, [(d, auto) for d in deliveries])


def test_a_batch_stores_like_one_delivery_after_the_other(store):
    first = ingest(
        store,
        delivery("a", ("fa1", 0, "firing")),
        delivery("a", ("fa1", 0, "firing")),  # the same alert again, racing the first
        delivery("a", ("fa2", 1, "firing"), ("fa1", 0, "firing")),
        delivery("b", ("fb1", 0, "firing")),
    )
    assert [(r.created, r.new_alerts, r.duplicates) for r in first] == [
        (True, 1, 0),
        (False, 0, 1),
        (False, 1, 1),
        (True, 1, 0),
    ]
    assert first[0].investigation_id and first[3].investigation_id
    assert not any(r.investigation_id for r in first[1:3])

    # Resolved alerts are stored one by one after the firing ones; the incident resolves.
    resolved = ingest(store, delivery("a", ("fa1", 0, "resolved"), ("fa2", 1, "resolved")))
    assert resolved[0].resolved == 2
    with store.read() as s:
        assert incidents.get_incident_row(s, "inc-a").status == "resolved"

    # New firing alerts reopen it once, as episode 2, with one new investigation.
    again = ingest(
        store,
        delivery("a", ("fa3", 10, "firing")),
        delivery("a", ("fa4", 11, "firing")),
        delivery("b", ("fb1", 0, "firing")),
    )
    assert [(r.reopened, r.new_alerts, r.duplicates, bool(r.investigation_id)) for r in again] == [
        (True, 1, 0, True),
        (False, 1, 0, False),
        (False, 0, 1, False),
    ]
    with store.read() as s:
        row = incidents.get_incident_row(s, "inc-a")
        assert row.status == "open" and row.episode == 2
        # The episode is analysed around its own first alert, not the first episode's.
        assert row.alert_time == T0 + timedelta(minutes=10)
        assert row.window_start == T0 + timedelta(minutes=10) - timedelta(hours=2)
        assert len(incidents.alerts_of(s, "inc-a")) == 4 and len(incidents.alerts_of(s, "inc-b")) == 1
        keys = {inv.trigger_key for inv in investigations.investigations_of(s, "inc-a")}
        assert keys == {"auto:inc-a:1", "auto:inc-a:2"}


def test_level_zero_batches_record_only(store):
    results = ingest(
        store, delivery("c", ("fc1", 0, "firing")), delivery("c", ("fc2", 1, "firing")), auto=False
    )
    assert [r.new_alerts for r in results] == [1, 1] and results[0].created
    assert not any(r.investigation_id for r in results)

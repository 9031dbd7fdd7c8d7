"""The normal period starts after the previous episode (issue 22): on SQLite and PostgreSQL, through
the webhook's ingest, the store's reading of an incident and the job that investigates it.

A reopened incident's earlier episode, or another incident about the same services, that resolved
inside the window must be neither the normal period nor this incident: the window starts after it
resolved plus the settling time, and a gap says so."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.config import Settings
from opsagent.domain import Alert, Incident, TimeWindow
from opsagent.evidence.base import Collected
from opsagent.jobs.job import Runner
from opsagent.pipeline import Services
from opsagent.store import Store, incidents, investigations
from opsagent.store import ingest as ingest_store

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=90)


def delivery(group: str, *alerts: Alert) -> Incident:
    """One webhook delivery of ``group``, windowed as intake does: two hours before its first firing alert."""
    first = (
        min(a.starts_at for a in alerts if a.status == "firing")
        if any(a.status == "firing" for a in alerts)
        else min(a.starts_at for a in alerts)
    )
    window = TimeWindow(start=first - timedelta(hours=2), end=first + timedelta(minutes=30))
    fields = {"title": group, "origin": "alertmanager", "group_key": group, "alert_time": first}
    return Incident(id=f"inc-{group}", alerts=list(alerts), window=window, **fields)


def alert(fp: str, service: str, minute: float, *, resolved_at: float | None = None) -> Alert:
    return Alert(
        fingerprint=fp,
        name="HighErrorRate",
        status="firing" if resolved_at is None else "resolved",
        labels={"alertname": "HighErrorRate", "service": service, "system": "shop"},
        starts_at=T0 + timedelta(minutes=minute),
        ends_at=None if resolved_at is None else T0 + timedelta(minutes=resolved_at),
    )


def ingest(store: Store, incident: Incident) -> ingest_store.IngestResult:
    with store.session() as s:
        return ingest_store.ingest_incident(s, incident, auto_investigate=True)


def loaded(store: Store, incident_id: str) -> Incident:
    with store.read() as s:
        return incidents.load_incident(s, incident_id)


class Noting:
    """An evidence source (our protocol seam) that notes the windows it is asked for and has nothing."""

    name = "metrics"

    def __init__(self) -> None:
        self.windows: list[TimeWindow] = []
        self._lock = threading.Lock()

    def collect(self, incident: Incident) -> Collected:
        with self._lock:
            self.windows.append(incident.window)
        return Collected()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    return Settings(data_dir=tmp_path / "data")


def test_a_reopened_episode_is_analysed_after_the_previous_one_resolved(
    store: Store, settings: Settings
) -> None:
    # Episode 1 fires at 03:00 and resolves at 03:04; the group fires again at 03:09.
    ingest(store, delivery("shop", alert("a1", "payment", 0)))
    ingest(store, delivery("shop", alert("a1", "payment", 0, resolved_at=4)))
    second = ingest(store, delivery("shop", alert("a2", "inventory", 9)))
    assert second.reopened and second.investigation_id

    incident = loaded(store, "inc-shop")
    assert incident.episode == 2
    assert incident.quiet_since == T0 + timedelta(minutes=4)
    assert "previous episode" in incident.quiet_after

    # The job reads the incident back and the pipeline asks its sources for the clamped window only.
    source = Noting()
    runner = Runner(store, Services(settings=settings, sources=[source], catalog=ActionCatalog([])))
    assert runner.run(second.investigation_id, worker="test") == "done"
    assert [w.start for w in source.windows] == [T0 + timedelta(minutes=4) + SETTLE]
    with store.read() as s:
        result = investigations.latest_result(s, "inc-shop")
    assert result is not None
    gaps = [g.reason for g in result.gaps if g.source == "normal period"]
    assert (
        len(gaps) == 1
        and "after the previous episode of this incident resolved at 2026-12-01 03:04:00" in gaps[0]
    )
    assert result.incident.window.start == T0 + timedelta(minutes=4) + SETTLE


def test_another_incident_counts_only_when_it_shares_a_service(store: Store) -> None:
    # Two other groups resolved before the new one fired: one about payment, one about search.
    ingest(store, delivery("payments", alert("p1", "payment", 0)))
    ingest(store, delivery("payments", alert("p1", "payment", 0, resolved_at=3)))
    ingest(store, delivery("search", alert("s1", "search", 1)))
    ingest(store, delivery("search", alert("s1", "search", 1, resolved_at=6)))
    ingest(store, delivery("checkout", alert("c1", "checkout", 10), alert("c2", "payment", 10)))

    incident = loaded(store, "inc-checkout")
    assert incident.episode == 1
    assert incident.quiet_since == T0 + timedelta(minutes=3), "the search incident shares no service"
    assert "inc-payments" in incident.quiet_after


def test_nothing_resolved_in_the_window_leaves_it_alone(store: Store, settings: Settings) -> None:
    # An episode resolved three hours earlier lies outside the two-hour window.
    ingest(store, delivery("shop", alert("a1", "payment", 0)))
    ingest(store, delivery("shop", alert("a1", "payment", 0, resolved_at=2)))
    ingest(store, delivery("shop", alert("a2", "payment", 180)))
    incident = loaded(store, "inc-shop")
    assert incident.episode == 2 and incident.quiet_since is None


def test_too_little_left_after_settling_is_a_gap_not_a_clamp(store: Store, settings: Settings) -> None:
    # The previous episode resolved 2 minutes before: 90 s of settling leaves 30 s, under the 60 s minimum.
    ingest(store, delivery("shop", alert("a1", "payment", 0)))
    ingest(store, delivery("shop", alert("a1", "payment", 0, resolved_at=3)))
    second = ingest(store, delivery("shop", alert("a2", "payment", 5)))
    assert second.investigation_id
    source = Noting()
    runner = Runner(store, Services(settings=settings, sources=[source], catalog=ActionCatalog([])))
    assert runner.run(second.investigation_id, worker="test") == "done"
    assert [w.start for w in source.windows] == [T0 + timedelta(minutes=5) - timedelta(hours=2)]
    with store.read() as s:
        result = investigations.latest_result(s, "inc-shop")
    assert result is not None
    gaps = [g.reason for g in result.gaps if g.source == "normal period"]
    assert len(gaps) == 1 and gaps[0].startswith("includes the previous episode of this incident")


def test_the_clamp_starts_on_a_whole_second_as_its_gap_prints_it() -> None:
    from opsagent.config import NormalPeriodSettings
    from opsagent.evidence.coverage import after_quiet

    alert_at = T0 + timedelta(minutes=9, milliseconds=419)
    incident = delivery("shop", alert("a2", "payment", 9)).model_copy(
        update={"alert_time": alert_at, "quiet_since": T0 + timedelta(minutes=4, milliseconds=250)}
    )
    clamped, gap = after_quiet(incident, NormalPeriodSettings(settle_seconds=65))
    assert clamped.window.start == T0 + timedelta(minutes=5, seconds=6)
    assert gap is not None and "starts at 2026-12-01 03:05:06 UTC" in gap.reason

"""Episodes through a real Alertmanager (issue 22, problem 1): a group that fires again after it
resolved reopens its incident as a new episode analysed around the new alert, not the first one;
alerts that join an open incident are investigated again when they add a service or a signal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsagent.config import Settings

from ..support.live_system import LiveSystem, OpsagentServer
from ..support.servers import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "episode-webhook-token"
VIEWER = "episode-viewer-token"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[LiveSystem, OpsagentServer, Settings]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        runbooks_dir=ROOT / "runbooks",
        embedding="hashing",
        webhook_token=TOKEN,
        api_tokens=[{"name": "viewer", "token": VIEWER, "role": "viewer"}],
        worker_mode="thread",
    )
    server = OpsagentServer(settings, sources=[])
    system = LiveSystem(base=tmp_path, calls={}, entry="")
    # One group for the whole team, so that alerts about other services join the same incident.
    system.start_alertmanager(f"{server.url}/v1/alerts/alertmanager", TOKEN, group_by=["team"])
    try:
        yield system, server, settings
    finally:
        system.close()
        server.close()


def post(system: LiveSystem, *alerts: dict[str, Any]) -> None:
    response = httpx.post(f"{system.alertmanager_url}/api/v2/alerts", json=list(alerts), timeout=10)
    assert response.status_code == 200, response.text


def alert(
    name: str, service: str, starts: datetime, ends: datetime | None = None, **labels: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": {"alertname": name, "service": service, "team": "shop", **labels},
        "annotations": {"summary": f"{name} on {service}"},
        "startsAt": starts.isoformat(),
    }
    if ends is not None:
        out["endsAt"] = ends.isoformat()
    return out


def detail(server: OpsagentServer, incident_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/v1/incidents/{incident_id}", headers={"Authorization": f"Bearer {VIEWER}"}, timeout=10
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def only_incident(server: OpsagentServer) -> str:
    def one() -> str | None:
        page = httpx.get(
            f"{server.url}/v1/incidents", headers={"Authorization": f"Bearer {VIEWER}"}, timeout=10
        ).json()
        return page["items"][0]["id"] if page["total"] == 1 else None

    found: str = wait_until(one, 30, 0.2, "the incident")
    return found


def finished(server: OpsagentServer, incident_id: str, count: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        d = detail(server, incident_id)
        invs = d["investigations"]
        return d if len(invs) == count and all(i["status"] == "done" for i in invs) else None

    found: dict[str, Any] = wait_until(done, 60, 0.2, f"{count} finished investigations")
    return found


def investigated_alert_times(settings: Settings, incident_id: str) -> list[datetime]:
    """The alert time each stored investigation of the incident analysed around, oldest first.

    Read from the database file itself: what was stored is the point, whatever module stores it.
    """
    with sqlite3.connect(settings.data_dir / "opsagent.db") as db:
        rows = db.execute(
            "SELECT result FROM investigations WHERE incident_id = ? AND result IS NOT NULL ORDER BY created_at",
            (incident_id,),
        ).fetchall()
    return [datetime.fromisoformat(json.loads(r[0])["incident"]["alert_time"]) for r in rows]


def test_a_reopened_incident_is_analysed_around_its_new_episode(stack) -> None:
    system, server, settings = stack
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    post(system, alert("HighLatency", "payments", first))
    incident_id = only_incident(server)
    finished(server, incident_id, 1)

    # It resolves, then the same group fires again 30 minutes after the first alert.
    post(system, alert("HighLatency", "payments", first, ends=datetime.now(UTC) - timedelta(seconds=1)))
    wait_until(lambda: detail(server, incident_id)["status"] == "resolved", 30, 0.2, "the incident resolved")
    second = datetime.now(UTC).replace(microsecond=0)
    post(system, alert("HighLatency", "payments", second))
    reopened = finished(server, incident_id, 2)

    assert reopened["status"] == "open" and reopened["episode"] == 2
    assert datetime.fromisoformat(reopened["alert_time"]) == second
    # The episode's window is around its own alert: two hours before it, not before the first one.
    assert datetime.fromisoformat(reopened["window_start"]) == second - timedelta(hours=2)
    times = investigated_alert_times(settings, incident_id)
    assert times == [first, second]
    notes = " ".join(reopened["findings"]["notes"])
    assert "Episode 2 of a reopened incident" in notes and "fired again after it had resolved" in notes


def test_alerts_joining_an_open_incident_are_investigated_when_they_add_something(stack) -> None:
    system, server, _ = stack
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    post(system, alert("HighLatency", "payments", start, pod="payments-1"))
    incident_id = only_incident(server)
    finished(server, incident_id, 1)

    # Another pod of the same alert on the same service adds nothing to explain.
    post(system, alert("HighLatency", "payments", start, pod="payments-2"))
    wait_until(lambda: len(detail(server, incident_id)["alerts"]) == 2, 30, 0.2, "the second pod's alert")
    # A different service with a different signal does: it is investigated again.
    post(system, alert("HighErrorRate", "orders", start + timedelta(seconds=40)))
    joined = finished(server, incident_id, 2)
    assert len(joined["alerts"]) == 3
    notes = " ".join(joined["findings"]["notes"])
    assert "HighErrorRate" in notes and "service orders" in notes
    assert json.dumps(joined["findings"]["notes"]).count("A new incident") == 1

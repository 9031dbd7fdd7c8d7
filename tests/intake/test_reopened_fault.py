"""A second fault reopening the same incident is analysed as its own episode (issue 22, problem 1,
through the whole live path): real services, Prometheus rules, Alertmanager grouping by alert name,
``opsagent serve``. The first episode's fault is in one service; after it resolves, the same alert
group fires for a fault in another service. The reopened episode must name the new service, not the
old one and not "no clear root cause"."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsagent.config import Settings

from ..support.live_system import RULES, LiveSystem, OpsagentServer, fast_catalogue
from ..support.servers import free_port, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "reopen-webhook-token"
VIEWER = {"Authorization": "Bearer reopen-viewer-token"}
CALLS = {"frontend": ["orders", "users"], "orders": ["payments"]}


@pytest.fixture
def stack(tmp_path: Path):
    system = LiveSystem(base=tmp_path, calls=CALLS, entry="frontend")
    server: OpsagentServer | None = None
    try:
        system.start_services()
        am_port = free_port()
        system.start_prometheus(RULES, alertmanager=f"127.0.0.1:{am_port}")
        settings = Settings(
            data_dir=tmp_path / "data",
            runbooks_dir=ROOT / "runbooks",
            embedding="hashing",
            webhook_token=TOKEN,
            api_tokens=[{"name": "viewer", "token": "reopen-viewer-token", "role": "viewer"}],
            worker_mode="thread",
            prometheus={"url": system.prometheus_url, "signals": fast_catalogue(), "min_step_seconds": 1},
            logs_dir=system.logs_dir,
        )
        server = OpsagentServer(settings)
        # One group per alert name: every service's HighErrorRate is the same incident.
        system.start_alertmanager(
            f"{server.url}/v1/alerts/alertmanager", TOKEN, group_by=["alertname"], port=am_port
        )
        yield system, server
    finally:
        system.close()
        if server is not None:
            server.close()


def get(server: OpsagentServer, path: str) -> Any:
    return httpx.get(f"{server.url}{path}", headers=VIEWER, timeout=10).json()


def the_incident(server: OpsagentServer) -> dict[str, Any]:
    items = get(server, "/v1/incidents")["items"]
    assert len(items) == 1, [i["title"] for i in items]
    found: dict[str, Any] = get(server, f"/v1/incidents/{items[0]['id']}")
    return found


def test_a_second_fault_reopening_the_incident_names_its_own_service(stack) -> None:
    system, server = stack
    system.wait_scraped()
    time.sleep(60)
    system.fault("orders", "errors")
    wait_until(lambda: get(server, "/v1/incidents")["total"], 60, 0.5, "the first alert")
    first = wait_until(
        lambda: (d := the_incident(server))["findings"] is not None and d, 60, 0.5, "the first findings"
    )
    assert first["findings"]["root_causes"][0]["service"] == "orders"

    system.fault("orders", "none")
    wait_until(lambda: the_incident(server)["status"] == "resolved", 90, 1, "the incident resolved")
    time.sleep(20)
    system.fault("users", "errors")

    def reopened() -> dict[str, Any] | None:
        d = the_incident(server)
        done = [i for i in d["investigations"] if i["status"] == "done"]
        return d if d["status"] == "open" and len(done) >= 2 else None

    second = wait_until(reopened, 90, 0.5, "the reopened episode's findings")
    notes = " ".join(second["findings"]["notes"])
    assert "Episode 2 of a reopened incident" in notes
    causes = [c["service"] for c in second["findings"]["root_causes"]]
    assert causes and causes[0] == "users", second["findings"]["summary"]

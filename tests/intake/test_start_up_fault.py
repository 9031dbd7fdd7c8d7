"""A fault two minutes after start-up, through the whole live path (issue 22, "done when"): real
services, Prometheus evaluating alert rules, Alertmanager, and ``opsagent serve`` with the
prometheus-client catalogue, the file logs and no other configuration. The alert must get an answer
naming the faulty service, and the short history is named as a gap rather than left silent."""

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
TOKEN = "start-up-webhook-token"
VIEWER = {"Authorization": "Bearer start-up-viewer-token"}
CALLS = {"frontend": ["orders", "users"], "orders": ["payments"]}
START_UP_SECONDS = 120


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
            api_tokens=[{"name": "viewer", "token": "start-up-viewer-token", "role": "viewer"}],
            worker_mode="thread",
            prometheus={"url": system.prometheus_url, "signals": fast_catalogue(), "min_step_seconds": 1},
            logs_dir=system.logs_dir,
        )
        server = OpsagentServer(settings)
        system.start_alertmanager(f"{server.url}/v1/alerts/alertmanager", TOKEN, port=am_port)
        yield system, server
    finally:
        system.close()
        if server is not None:
            server.close()


def incidents(server: OpsagentServer) -> list[dict[str, Any]]:
    page = httpx.get(f"{server.url}/v1/incidents", headers=VIEWER, timeout=10).json()
    items: list[dict[str, Any]] = page["items"]
    return items


def detail(server: OpsagentServer, incident_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        f"{server.url}/v1/incidents/{incident_id}", headers=VIEWER, timeout=10
    ).json()
    return found


def test_a_fault_two_minutes_after_start_up_gets_an_answer(stack) -> None:
    system, server = stack
    system.wait_scraped()
    time.sleep(max(0.0, system.started_at + START_UP_SECONDS - time.time()))
    assert not incidents(server), "no alert before the fault"
    system.fault("orders", "errors")

    def orders_investigated() -> dict[str, Any] | None:
        for item in incidents(server):
            if item["service"] == "orders":
                d = detail(server, item["id"])
                return d if d["findings"] is not None else None
        return None

    found = wait_until(orders_investigated, 90, 0.5, "the orders alert investigated")
    causes = [c["service"] for c in found["findings"]["root_causes"]]
    # Named among the first causes: on a machine shared with other work, the services' latency is noisy
    # enough that ranking it first every time is the lab's measurement, not this test's.
    assert "orders" in causes[:3], found["findings"]["summary"]
    gaps = {g["source"]: g["reason"] for g in found["gaps"]}
    # About two minutes of history: fitted to and named, not a silent empty answer.
    assert "shorter than wanted" in gaps["normal period"]

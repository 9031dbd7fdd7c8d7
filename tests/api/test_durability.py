"""A job accepted is never lost: kill the service (worker processes or threads), one of its worker
processes, or a worker (Redis queue) in the middle of an investigation; after a restart the
investigation completes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from opsagent.config import Settings
from opsagent.store import Store
from opsagent.store.models import InvestigationRow

from .conftest import WEBHOOK_TOKEN, auth, base_env, fixture_payload, free_port, wait_http, wait_until

pytestmark = pytest.mark.integration
HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def investigation(base: str, inv_id: str) -> dict:
    return httpx.get(f"{base}/v1/investigations/{inv_id}", headers=auth("viewer"), timeout=10).json()


def worker_pid(data_dir: Path, inv_id: str, database_url: str | None) -> int | None:
    """The process that holds (or last held) the investigation: workers are named kind:host:pid:thread."""
    store = Store(Settings(data_dir=data_dir, database_url=database_url))
    try:
        with store.read() as s:
            worker = s.get(InvestigationRow, inv_id).worker
    finally:
        store.close()
    return int(worker.split(":")[2]) if worker else None


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("mode", ["process", "thread"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_service_finishes_the_investigation_after_restart(tmp_path, procs, request, database, mode):
    extra = {"OPSAGENT_JOB_LEASE_SECONDS": "1.5", "OPSAGENT_WORKER_MODE": mode}
    if database == "postgresql":
        extra["OPSAGENT_DATABASE_URL"] = request.getfixturevalue("fresh_pg")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    slow = procs(
        ["serve", str(port)], base_env(tmp_path, OPSAGENT_TEST_SLOW_SECONDS="30", **extra), tmp_path / "1.log"
    )
    wait_http(f"{base}/readyz", proc=slow)
    accepted = httpx.post(f"{base}/v1/alerts/alertmanager", json=fixture_payload(), headers=HOOK).json()
    inv_id = accepted["investigation_ids"][0]
    wait_until(lambda: investigation(base, inv_id)["status"] == "running", what="the investigation to start")
    slow.kill()  # SIGKILL: no shutdown hook runs

    fast = procs(
        ["serve", str(port)], base_env(tmp_path, OPSAGENT_TEST_SLOW_SECONDS="0", **extra), tmp_path / "2.log"
    )
    wait_http(f"{base}/readyz", proc=fast)
    done = wait_until(
        lambda: (inv := investigation(base, inv_id))["status"] == "done" and inv,
        timeout=60,
        what="completion",
    )
    assert done["attempts"] == 2
    detail = httpx.get(f"{base}/v1/incidents/{accepted['incident_ids'][0]}", headers=auth("viewer")).json()
    assert detail["findings"] is not None and len(detail["investigations"]) == 1


def test_killed_redis_worker_is_replaced_and_workers_share_the_load(
    tmp_path, fresh_pg, redis_queue, procs, make_settings, live_server
):
    # redis_queue comes before procs: the workers are killed before their Redis keys are deleted.
    redis_url, queue = redis_queue
    extra = {
        "OPSAGENT_DATABASE_URL": fresh_pg,
        "OPSAGENT_REDIS_URL": redis_url,
        "OPSAGENT_REDIS_QUEUE": queue,
        "OPSAGENT_JOB_LEASE_SECONDS": "1.5",
    }
    api = live_server(
        make_settings(database_url=fresh_pg, redis_url=redis_url, redis_queue=queue, job_lease_seconds=1.5)
    )
    accepted = httpx.post(f"{api.url}/v1/alerts/alertmanager", json=fixture_payload(), headers=HOOK).json()
    inv_id = accepted["investigation_ids"][0]
    assert investigation(api.url, inv_id)["status"] == "queued"  # nobody runs it in the API process

    slow = procs(
        ["worker", f"{queue}-slow"],
        base_env(tmp_path, OPSAGENT_TEST_SLOW_SECONDS="30", **extra),
        tmp_path / "w1.log",
    )
    wait_until(
        lambda: investigation(api.url, inv_id)["status"] == "running", timeout=60, what="a worker to take it"
    )
    slow.kill()

    env = base_env(tmp_path, OPSAGENT_TEST_SLOW_SECONDS="0.5", **extra)
    procs(["worker", f"{queue}-a"], env, tmp_path / "wa.log")
    procs(["worker", f"{queue}-b"], env, tmp_path / "wb.log")
    done = wait_until(
        lambda: (inv := investigation(api.url, inv_id))["status"] == "done" and inv,
        timeout=90,
        what="completion",
    )
    assert done["attempts"] == 2

    ids = []
    for i in range(8):
        payload = fixture_payload()
        payload["groupKey"] = f'{{}}:{{alertname="Load{i}"}}'
        payload["alerts"][0]["fingerprint"] = f"load{i:04d}"
        ids += httpx.post(f"{api.url}/v1/alerts/alertmanager", json=payload, headers=HOOK).json()[
            "investigation_ids"
        ]
    assert len(ids) == 8

    def all_done() -> list[dict] | None:
        rows = [investigation(api.url, i) for i in ids]
        return rows if all(r["status"] == "done" for r in rows) else None

    finished = wait_until(all_done, timeout=120, what="all investigations")
    with api.app.state.runtime.store.read() as s:
        from opsagent.store.models import InvestigationRow

        workers = {s.get(InvestigationRow, r["id"]).worker.split(":")[2] for r in finished}
    assert len(workers) == 2, workers  # two worker processes (pids) both ran some


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_worker_process_is_restarted_and_finishes_the_investigation(
    tmp_path, procs, request, database
):
    database_url = request.getfixturevalue("fresh_pg") if database == "postgresql" else None
    extra = {"OPSAGENT_JOB_LEASE_SECONDS": "1.5", "OPSAGENT_WORKER_MODE": "process"}
    if database_url:
        extra["OPSAGENT_DATABASE_URL"] = database_url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Slow enough that the kill lands mid-investigation, short enough for the second attempt.
    server = procs(
        ["serve", str(port)], base_env(tmp_path, OPSAGENT_TEST_SLOW_SECONDS="4", **extra), tmp_path / "s.log"
    )
    wait_http(f"{base}/readyz", proc=server)
    accepted = httpx.post(f"{base}/v1/alerts/alertmanager", json=fixture_payload(), headers=HOOK).json()
    inv_id = accepted["investigation_ids"][0]
    wait_until(lambda: investigation(base, inv_id)["status"] == "running", what="the investigation to start")
    first = worker_pid(tmp_path, inv_id, database_url)
    assert first is not None and first != server.popen.pid
    assert parent_of(first) == server.popen.pid  # a worker process of the service, not the service
    os.kill(first, signal.SIGKILL)

    done = wait_until(
        lambda: (inv := investigation(base, inv_id))["status"] == "done" and inv,
        timeout=60,
        what="completion",
    )
    assert done["attempts"] == 2
    second = worker_pid(tmp_path, inv_id, database_url)
    assert second is not None and second != first
    assert parent_of(second) == server.popen.pid  # the supervisor's replacement
    assert server.popen.poll() is None  # the service itself never stopped
    assert httpx.get(f"{base}/readyz").status_code == 200
    detail = httpx.get(f"{base}/v1/incidents/{accepted['incident_ids'][0]}", headers=auth("viewer")).json()
    assert detail["findings"] is not None and len(detail["investigations"]) == 1
    assert "exited with -9" in server.log.read_text()


def test_service_stops_its_worker_processes(tmp_path, procs):
    """SIGTERM to the service alone (not its process group): its workers leave with it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = procs(
        ["serve", str(port)], base_env(tmp_path, OPSAGENT_WORKER_MODE="process"), tmp_path / "s.log"
    )
    wait_http(f"{base}/readyz", proc=server)
    children = [
        int(p) for p in Path(f"/proc/{server.popen.pid}/task/{server.popen.pid}/children").read_text().split()
    ]
    assert children
    server.popen.send_signal(signal.SIGTERM)
    # uvicorn shuts down (lifespan and all), then re-raises the signal it caught.
    assert server.popen.wait(timeout=30) in (0, -signal.SIGTERM)
    # Gone, or a zombie that this container's init does not reap: not running, either way.
    wait_until(lambda: all(not running(pid) for pid in children), timeout=15, what="the workers to exit")
    assert "did not stop in time" not in server.log.read_text()  # they left on their own

"""A job accepted is never lost: kill the service (in-process queue) or a worker (Redis queue) in the
middle of an investigation; after a restart the investigation completes."""

from __future__ import annotations

import httpx
import pytest

from .conftest import WEBHOOK_TOKEN, auth, base_env, fixture_payload, free_port, wait_http, wait_until

pytestmark = pytest.mark.integration
HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def investigation(base: str, inv_id: str) -> dict:
    return httpx.get(f"{base}/v1/investigations/{inv_id}", headers=auth("viewer"), timeout=10).json()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_service_finishes_the_investigation_after_restart(tmp_path, procs, request, database):
    extra = {"OPSAGENT_JOB_LEASE_SECONDS": "1.5"}
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

"""Pending approvals expire on time without anyone listing them: the sweeper, in the API and the worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from opsagent.api.app import create_app
from opsagent.autonomy.approvals import (
    ActionRequest,
    ActionStatus,
    Approvals,
    ExpirySweeper,
)
from opsagent.autonomy.audit import InMemoryAuditLog
from opsagent.autonomy.memory_store import InMemoryActionStore
from opsagent.autonomy.runner import proposal
from opsagent.config import Settings
from opsagent.domain import AutonomyLevel
from opsagent.jobs import run_worker
from opsagent.pipeline import Services
from opsagent.store import Store
from opsagent.store.actions import SqlActionStore, SqlAuditLog

from .conftest import REPO
from .helpers import CATALOG

REDIS = "redis://127.0.0.1:6379/0"


def pending(rid: str, expires_at: datetime) -> ActionRequest:
    return ActionRequest(
        id=rid,
        incident_id="inc-x",
        action=CATALOG.propose(
            "restart-deployment",
            proposal("restart-deployment", "orders").target,
            {"namespace": "shop", "deployment": "orders"},
        ),
        confidence=0.9,
        level=AutonomyLevel.L2,
        status=ActionStatus.PENDING,
        reason="L2: low-risk actions need approval",
        created_at=expires_at - timedelta(hours=1),
        expires_at=expires_at,
    )


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_the_sweeper_expires_due_requests_on_its_own():
    store, audit = InMemoryActionStore(), InMemoryAuditLog()
    now = datetime.now(UTC)
    store.add(pending("due", now - timedelta(seconds=1)))
    store.add(pending("later", now + timedelta(hours=1)))
    sweeper = ExpirySweeper(Approvals(store, audit), 0.05).start()
    try:
        assert wait_until(lambda: store.get("due").status is ActionStatus.EXPIRED)
        # Time passes; the next sweep catches the second one too, without anyone asking.
        store.save(store.get("later").model_copy(update={"expires_at": datetime.now(UTC)}))
        assert wait_until(lambda: store.get("later").status is ActionStatus.EXPIRED)
    finally:
        sweeper.stop()
    expiries = [e for e in audit.entries() if e.kind == "expiry"]
    assert sorted(e.request_id or "" for e in expiries) == ["due", "later"]  # each once


def test_a_failing_sweep_is_logged_and_retried():
    class FlakyStore(InMemoryActionStore):
        fails = 2

        def find(self, **kw):  # type: ignore[no-untyped-def]
            if self.fails:
                self.fails -= 1
                from opsagent.errors import StoreError

                raise StoreError("database unavailable")
            return super().find(**kw)

    store = FlakyStore()
    store.add(pending("due", datetime.now(UTC) - timedelta(seconds=1)))
    sweeper = ExpirySweeper(Approvals(store, InMemoryAuditLog()), 0.05).start()
    try:
        assert wait_until(lambda: store.get("due").status is ActionStatus.EXPIRED)
    finally:
        sweeper.stop()


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": str(tmp_path),
            "runbooks_dir": str(REPO / "runbooks"),
            "embedding": "hashing",
            "autonomy_level": "L2",
            "autonomy": {"approval_sweep_seconds": 0.1},
            **kw,
        }
    )


def test_the_api_lifespan_runs_the_sweeper(tmp_path: Path):
    app = create_app(_settings(tmp_path), sources=[])
    with TestClient(app):
        store = SqlActionStore(app.state.runtime.store)
        store.add(pending("api-due", datetime.now(UTC) + timedelta(seconds=0.3)))
        assert store.get("api-due").status is ActionStatus.PENDING
        # No request to /v1/actions: only the sweeper can mark it.
        assert wait_until(lambda: store.get("api-due").status is ActionStatus.EXPIRED)
        entries = SqlAuditLog(app.state.runtime.store).entries()
        assert [(e.kind, e.request_id) for e in entries] == [("expiry", "api-due")]


def test_opsagent_worker_runs_the_sweeper(tmp_path: Path):
    queue = f"opsagent-test-sweeper-{uuid.uuid4().hex[:8]}"
    settings = _settings(tmp_path, redis_url=REDIS, redis_queue=queue)
    store = Store(settings)
    store.migrate()
    try:
        SqlActionStore(store).add(pending("worker-due", datetime.now(UTC) - timedelta(seconds=1)))
        # Burst: the worker starts, finds no investigation to run, and stops; its sweeper ran meanwhile.
        run_worker(settings, Services(settings=settings, sources=[], catalog=CATALOG), burst=True)
        assert SqlActionStore(store).get("worker-due").status is ActionStatus.EXPIRED
    finally:
        store.close()
        conn = redis.Redis.from_url(REDIS)
        keys = list(conn.scan_iter(f"*{queue}*"))
        if keys:
            conn.delete(*keys)
        conn.close()

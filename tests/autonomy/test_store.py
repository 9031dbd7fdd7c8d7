"""The SQL seams on SQLite and on a real PostgreSQL (a fresh database per test, dropped afterwards)."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text

from opsagent.autonomy.approvals import ActionStatus
from opsagent.autonomy.audit import AuditEntry, verify_chain
from opsagent.autonomy.killswitch import switch
from opsagent.autonomy.runner import proposal
from opsagent.config import Settings
from opsagent.domain import AutonomyLevel
from opsagent.errors import StoreError
from opsagent.store import Store
from opsagent.store.actions import SqlActionStore, SqlAuditLog, SqlKillSwitch

from .conftest import Target, add_deployment
from .helpers import make_runner, policy

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request, tmp_path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'ops.db'}")
        return
    name = f"opsagent_autonomy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Settings(data_dir=tmp_path, database_url=f"postgresql://postgres@127.0.0.1:5432/{name}")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(db_settings) -> Iterator[Store]:
    s = Store(db_settings)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def test_audit_log_is_append_only_and_chained(store: Store):
    log = SqlAuditLog(store)
    for i in range(3):
        log.append(
            AuditEntry(
                kind="decision",
                reason=f"r{i}",
                incident_id="inc",
                confidence=0.5 + i / 10,
                detail={"params": {"b": 1, "a": [1, 2]}},
                at=datetime.now(UTC),
            )
        )
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert verify_chain(entries)
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(StoreError), store.session() as s:
            s.execute(text(statement))
    assert verify_chain(log.entries()) and len(log.entries()) == 3


def test_kill_switch_is_shared_between_processes(db_settings, store: Store):
    other = Store(db_settings)  # another process: its own engine and connections
    try:
        switch(SqlKillSwitch(store), SqlAuditLog(store), on=True, actor="alice", reason="stop")
        seen = SqlKillSwitch(other).state()
        assert seen.on and seen.actor == "alice"
        switch(SqlKillSwitch(other), SqlAuditLog(other), on=False, actor="bob")
        assert not SqlKillSwitch(store).state().on
        assert [e.outcome for e in SqlAuditLog(store).entries() if e.kind == "kill_switch"] == ["on", "off"]
    finally:
        other.close()


def test_runner_on_sql_kill_switch_mid_incident_and_approvals(db_settings, store: Store, target: Target):
    for name in ("orders", "cart"):
        add_deployment(target, name)
    actions, audit, kill = SqlActionStore(store), SqlAuditLog(store), SqlKillSwitch(store)
    api = Store(db_settings)  # the API process flips the switch
    target.on_write = lambda call: switch(SqlKillSwitch(api), SqlAuditLog(api), on=True, actor="alice")
    try:
        runner, approvals, _ = make_runner(
            target, AutonomyLevel.L3, policy(max_concurrent_services=5), store=actions, audit=audit, kill=kill
        )
        kill_idle = {"cluster": "orders-db", "database": "orders", "idle_seconds": 600}
        first = runner.handle(
            "inc-1", proposal("kill-idle-db-connections", "orders", kill_idle, runbook_id="rb"), 0.9
        )
        second = runner.handle(
            "inc-1",
            proposal(
                "restart-deployment",
                "cart",
                {"namespace": "shop", "deployment": "cart"},
                namespace="shop",
                runbook_id="rb",
            ),
            0.9,
        )
        assert first.status is ActionStatus.SUCCEEDED and second.status is ActionStatus.NOT_PROPOSED
        assert target.ran() == ["kill-idle-db-connections"]
        # Approvals survive in the database; a pending one is listed, approved, re-checked and run.
        target.on_write = None
        switch(kill, audit, on=False, actor="alice")
        runner.level = AutonomyLevel.L2
        pending = runner.handle(
            "inc-1",
            proposal(
                "restart-deployment",
                "cart",
                {"namespace": "shop", "deployment": "cart"},
                namespace="shop",
                runbook_id="rb",
            ),
            0.9,
        )
        assert [r.id for r in actions.find(status=ActionStatus.PENDING)] == [pending.id]
        approvals.approve(pending.id, "bob", "ok")
        done = runner.run_approved(pending.id, "bob")
        assert done.status is ActionStatus.SUCCEEDED and actions.get(pending.id).decided_by == "bob"
        assert target.ran() == ["kill-idle-db-connections", "restart-deployment"]
        assert verify_chain(audit.entries())
        kinds = [e.kind for e in audit.entries(request_id=pending.id)]
        assert kinds == ["decision", "approval", "execution_started", "execution_result"]
    finally:
        api.close()

"""Rate limits hold under real concurrency: N+1 simultaneous automatic actions under a limit of N.

Every proposal passes the gate's other checks; only the per-action rate limit (N) can hold one back.
A barrier in the target inspector (our ``TargetInspector`` seam, called just before the gate) lines
all of them up so they reach the gate together: before the ledger step was atomic, each read "0 of N
used" and all N+1 ran. Threads in one process on SQLite and PostgreSQL, then separate processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from opsagent.autonomy.approvals import ActionStatus
from opsagent.autonomy.audit import verify_chain
from opsagent.autonomy.executors import Executors, HttpExecutor
from opsagent.autonomy.killswitch import InMemoryKillSwitch
from opsagent.autonomy.policy import TargetState
from opsagent.autonomy.runner import ActionRunner, RunnerParts, proposal
from opsagent.config import HttpExecutorSettings, PolicyRule, Settings
from opsagent.domain import ActionTarget, AutonomyLevel
from opsagent.store import Store
from opsagent.store.actions import SqlActionStore, SqlAuditLog

from .conftest import REPO, Target
from .helpers import CATALOG, policy

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
LIMIT = 3
SERVICES = ["orders", "cart", "payment", "catalog"]  # LIMIT + 1 targets, one action each


def kill(service: str) -> dict:
    # Each service's own database cluster: a distinct resolved target per proposal.
    return {"cluster": f"{service}-db", "database": service, "idle_seconds": 600}


def _policy():
    # Only the per-action limit can bind: 4 different targets in 4 incidents, room on every other cap.
    return policy(
        rules=[PolicyRule(kinds=["cluster"])],
        max_actions_per_action=LIMIT,
        max_actions_per_service=10,
        max_concurrent_services=10,
        max_targets_per_window=10,
        max_replica_share=1.0,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ops.db'}"
        return
    name = f"opsagent_race_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(Settings(data_dir=tmp_path, database_url=db_url))
    s.migrate()
    try:
        yield s
    finally:
        s.close()


class BarrierInspector:
    """Holds every caller until all parties have arrived, then lets them race to the gate."""

    def __init__(self, parties: int) -> None:
        self._barrier = threading.Barrier(parties)

    def target_state(self, target: ActionTarget) -> TargetState:
        self._barrier.wait(timeout=30)
        return TargetState()


def _check(store: Store, target: Target) -> None:
    requests = SqlActionStore(store).find()
    statuses = sorted(r.status.value for r in requests)
    assert statuses == ["pending"] + ["succeeded"] * LIMIT, statuses
    (held,) = [r for r in requests if r.status is ActionStatus.PENDING]
    assert "rate limit" in held.reason and f"max {LIMIT}" in held.reason
    assert target.ran() == ["kill-idle-db-connections"] * LIMIT
    audit = SqlAuditLog(store).entries()
    assert verify_chain(audit)
    # Each request's decision was recorded once, before its execution.
    assert (
        sorted(e.outcome or "" for e in audit if e.kind == "decision")
        == ["await_approval"] + ["execute"] * LIMIT
    )


def test_threads_n_plus_one_concurrent_actions_leave_exactly_one_waiting(store: Store, target: Target):
    http = HttpExecutor(
        HttpExecutorSettings(url=f"{target.url}/hooks", token=SecretStr("h"), timeout_seconds=10)
    )
    runner = ActionRunner(
        RunnerParts(
            level=AutonomyLevel.L3,
            policy=_policy(),
            catalog=CATALOG,
            executors=Executors({"http": http}, inspector=BarrierInspector(len(SERVICES))),
            store=SqlActionStore(store),
            audit=SqlAuditLog(store),
            kill_switch=InMemoryKillSwitch(),
        )
    )
    errors: list[BaseException] = []

    def one(service: str) -> None:
        try:
            runner.handle(
                f"inc-race-{service}",
                proposal("kill-idle-db-connections", service, kill(service), runbook_id="rb"),
                0.9,
            )
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in SERVICES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    _check(store, target)


_CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    from pydantic import SecretStr
    from opsagent.autonomy.catalog import ActionCatalog
    from opsagent.autonomy.executors import Executors, HttpExecutor
    from opsagent.autonomy.killswitch import InMemoryKillSwitch
    from opsagent.autonomy.policy import TargetState
    from opsagent.autonomy.runner import ActionRunner, RunnerParts, proposal
    from opsagent.config import AutonomySettings, HttpExecutorSettings, Settings
    from opsagent.domain import AutonomyLevel
    from opsagent.evidence.runbooks import load_runbooks
    from opsagent.store import Store
    from opsagent.store.actions import SqlActionStore, SqlAuditLog

    db_url, hooks, barrier_dir, parties, policy_json, services = sys.argv[1:7]
    barrier, parties = Path(barrier_dir), int(parties)

    class FileBarrier:
        # A barrier across processes: each party leaves a file, then waits until all are there.
        def target_state(self, target):
            (barrier / f"{target.service}.ready").touch()
            deadline = time.monotonic() + 60
            while len(list(barrier.glob("*.ready"))) < parties:
                if time.monotonic() > deadline:
                    raise SystemExit("barrier timed out")
                time.sleep(0.005)
            return TargetState()

    store = Store(Settings(database_url=db_url))
    runner = ActionRunner(RunnerParts(
        level=AutonomyLevel.L3,
        policy=AutonomySettings.model_validate_json(policy_json),
        catalog=ActionCatalog.from_runbooks(load_runbooks(Path(sys.argv[7]))),
        executors=Executors(
            {"http": HttpExecutor(HttpExecutorSettings(url=hooks, token=SecretStr("h"), timeout_seconds=10))},
            inspector=FileBarrier(),
        ),
        store=SqlActionStore(store),
        audit=SqlAuditLog(store),
        kill_switch=InMemoryKillSwitch(),
    ))
    out = {}
    def one(service):
        kill = {"cluster": f"{service}-db", "database": service, "idle_seconds": 600}
        action = proposal("kill-idle-db-connections", service, kill, runbook_id="rb")
        req = runner.handle(f"inc-race-{service}", action, 0.9)
        out[service] = req.status.value
    threads = [threading.Thread(target=one, args=(s,)) for s in services.split(",")]
    for t in threads: t.start()
    for t in threads: t.join()
    store.close()
    print(json.dumps(out))
    """
)


def test_processes_n_plus_one_concurrent_actions_leave_exactly_one_waiting(
    store: Store, db_url: str, target: Target, tmp_path: Path
):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    halves = [SERVICES[:2], SERVICES[2:]]  # two processes, two threads each
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                db_url,
                f"{target.url}/hooks",
                str(barrier),
                str(len(SERVICES)),
                _policy().model_dump_json(),
                ",".join(half),
                str(REPO / "runbooks"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for half in halves
    ]
    results: dict[str, str] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.update(json.loads(out.strip().splitlines()[-1]))
    assert sorted(results.values()) == ["pending"] + ["succeeded"] * LIMIT, results
    _check(store, target)

"""The incident report shows what the runner actually did, and actions that need parameters.

The demo incident (db-pool-exhaustion, ground truth restart-deployment and kill-idle-db-connections)
goes through the real service: webhook, investigation on its recorded evidence, autonomy runner. The
ledger already holds a recent change on orders, so at run time the rate limit holds restart-deployment
that the investigation's first pass expected to run; kill-idle-db-connections cannot be derived
(cluster, database; idle_seconds has a schema default) and is listed for a person to complete when approving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from opsagent.api.app import create_app
from opsagent.autonomy.approvals import (
    ActionRequest,
    ActionStatus,
    Approvals,
)
from opsagent.autonomy.audit import InMemoryAuditLog
from opsagent.autonomy.catalog import labels_for
from opsagent.autonomy.memory_store import InMemoryActionStore
from opsagent.autonomy.policy import decide
from opsagent.commands.investigate import investigate_recorded
from opsagent.config import ApiToken, PolicyRule, Settings
from opsagent.domain import ActionTarget, AutonomyLevel, DecisionOutcome
from opsagent.errors import InputError
from opsagent.evals.native import load_native
from opsagent.evals.replay import replay_sources
from opsagent.store.actions import SqlActionStore

from .conftest import REPO, Target, add_deployment
from .helpers import CATALOG, policy

INCIDENT = REPO / "examples" / "incidents" / "db-pool-exhaustion"
TOKENS = {"viewer": "v-token", "responder": "r-token", "admin": "a-token"}
KILL_PARAMS = {"cluster": "orders-db", "database": "orders", "idle_seconds": 600}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


# ------------------------------------------------------------------------ parameters from labels


def test_default_params_from_labels_of_alerts_about_the_target_only():
    target = ActionTarget(service="orders", namespace="shop")
    alerts = [
        # The victim's alert: its pod and database must not become the root cause's parameters.
        {"alertname": "HighErrorRate", "service": "checkout", "pod": "checkout-1", "datname": "checkout"},
        {
            "alertname": "PostgresqlTooManyConnections",
            "service": "orders",
            "datname": "orders",
            "cluster": "orders-db",
        },
    ]
    labels = labels_for(target, alerts)
    assert labels["datname"] == "orders" and "pod" not in labels
    params = CATALOG.default_params("kill-idle-db-connections", target, labels)
    assert params == {"cluster": "orders-db", "database": "orders", "idle_seconds": 300}  # schema default
    action = CATALOG.propose_partial("kill-idle-db-connections", target, params)
    assert action.missing_params == []
    without_database = {k: v for k, v in params.items() if k != "database"}
    assert CATALOG.propose_partial("kill-idle-db-connections", target, without_database).missing_params == [
        "database"
    ]
    # Labels that do not fit the schema are dropped, not passed on.
    bad = CATALOG.default_params(
        "kill-idle-db-connections", target, {"cluster": "Orders DB; drop", "datname": "orders"}
    )
    assert CATALOG.propose_partial("kill-idle-db-connections", target, bad).missing_params == ["cluster"]
    # increase-memory-limit: namespace and container from the labels, the workload from the target.
    mem = CATALOG.default_params(
        "increase-memory-limit",
        ActionTarget(service="cart", namespace="shop"),
        {"container": "cart", "service": "cart"},
    )
    assert mem.get("container") == "cart" and mem.get("namespace") == "shop"


def test_an_action_with_missing_params_never_runs_on_its_own():
    target = ActionTarget(service="orders", namespace="shop")
    action = CATALOG.propose_partial("kill-idle-db-connections", target, {"cluster": "orders-db"})
    for level in (AutonomyLevel.L2, AutonomyLevel.L3, AutonomyLevel.L5):
        d = decide(action, level, policy(), 1.0)
        assert (
            d.outcome is DecisionOutcome.AWAIT_APPROVAL
            and "needs parameters: database, idle_seconds" in d.reason
        )
    assert decide(action, AutonomyLevel.L1, policy(), 1.0).outcome is DecisionOutcome.NOT_PROPOSED


def test_approval_completes_only_the_missing_params_and_checks_them():
    store, audit = InMemoryActionStore(), InMemoryAuditLog()
    action = CATALOG.propose_partial(
        "kill-idle-db-connections", ActionTarget(service="orders"), {"cluster": "orders-db"}
    )

    def queued(rid: str) -> str:
        now = datetime.now(UTC)
        store.add(
            ActionRequest(
                id=rid,
                incident_id="inc",
                action=action,
                confidence=0.9,
                level=AutonomyLevel.L3,
                status=ActionStatus.PENDING,
                reason="needs parameters: database, idle_seconds",
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        return rid

    approvals = Approvals(store, audit, catalog=CATALOG)
    rid = queued("r1")
    with pytest.raises(InputError, match="needs parameters: idle_seconds"):
        approvals.approve(rid, "alice", params={"database": "orders"})
    with pytest.raises(InputError, match="only missing parameters"):
        approvals.approve(rid, "alice", params={"database": "orders", "idle_seconds": 600, "cluster": "x"})
    with pytest.raises(InputError, match="idle_seconds"):
        approvals.approve(rid, "alice", params={"database": "orders", "idle_seconds": 5})  # below minimum
    assert store.get(rid).status is ActionStatus.PENDING  # refusals record nothing
    done = approvals.approve(
        rid, "alice", "checked pg_stat_activity", params={"database": "orders", "idle_seconds": 600}
    )
    assert done.status is ActionStatus.APPROVED and done.action.params == KILL_PARAMS
    assert done.action.missing_params == []
    [entry] = [e for e in audit.entries() if e.kind == "approval"]
    assert entry.detail["params"] == {"database": "orders", "idle_seconds": 600}


def test_demo_incident_proposes_both_ground_truth_actions(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        embedding="hashing",
        autonomy_level=AutonomyLevel.L3,
        runbooks_dir=REPO / "runbooks",
    )
    inv = investigate_recorded(INCIDENT, settings, "offline")
    truth = yaml.safe_load((INCIDENT / "incident.yaml").read_text())["truth"]["actions"]
    proposed = {a.action_id: a for a in inv.findings.actions}
    assert set(truth) <= set(proposed), sorted(proposed)
    assert proposed["restart-deployment"].params == {"namespace": "shop", "deployment": "orders"}
    assert proposed["kill-idle-db-connections"].missing_params == ["cluster", "database"]


# ------------------------------------------------------------------------------ the service report


@pytest.fixture
def client(tmp_path: Path, target: Target) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {
            "data_dir": str(tmp_path),
            "runbooks_dir": str(REPO / "runbooks"),
            "embedding": "hashing",
            "autonomy_level": "L3",
            "workers": 1,
            "autonomy": {
                "rules": [PolicyRule().model_dump()],
                "max_actions_per_service": 1,
                "script_dir": str(REPO / "scripts/actions"),
                "http": {"url": f"{target.url}/hooks"},
                "kubernetes": {"api_url": target.url},
            },
            "api_tokens": [
                ApiToken(name=f"{r}-user", token=t, role=r).model_dump(mode="json") | {"token": t}
                for r, t in TOKENS.items()
            ],
        }
    )
    app = create_app(settings, sources=replay_sources(load_native(INCIDENT)))
    with TestClient(app) as c:
        yield c


def _report(client: TestClient, incident_id: str, fmt: str) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = client.get(f"/v1/incidents/{incident_id}/report", params={"format": fmt}, headers=auth("viewer"))
        if r.status_code == 200:
            body = r.json() if fmt == "json" else r.text
            # The report exists once the investigation is stored; the runner's three requests follow.
            if fmt != "json" or sum(a.get("source") == "runner" for a in body["actions"]) >= 3:
                return body
        time.sleep(0.2)
    raise AssertionError(f"no report for {incident_id}")


def test_report_shows_what_actually_happened(client: TestClient, target: Target):
    add_deployment(target, "orders")
    # A change on orders a few minutes ago: the per-service limit (1) is used up.
    SqlActionStore(client.app.state.runtime.store).add(
        ActionRequest(
            id="earlier",
            incident_id="inc-earlier",
            action=CATALOG.propose(
                "restart-deployment",
                ActionTarget(service="orders", namespace="shop"),
                {"namespace": "shop", "deployment": "orders"},
            ),
            confidence=0.9,
            level=AutonomyLevel.L3,
            status=ActionStatus.SUCCEEDED,
            reason="",
            automatic=True,
            created_at=datetime.now(UTC) - timedelta(minutes=5),
            started_at=datetime.now(UTC) - timedelta(minutes=5),
            finished_at=datetime.now(UTC) - timedelta(minutes=4),
        )
    )
    payload = yaml.safe_load((INCIDENT / "incident.yaml").read_text())["alert"]
    accepted = client.post("/v1/alerts/alertmanager", json=payload, headers=auth("responder"))
    assert accepted.status_code == 202, accepted.text
    [incident_id] = accepted.json()["incident_ids"]

    report = _report(client, incident_id, "json")
    # The investigation's first pass expected restart-deployment to run ...
    detail = client.get(f"/v1/incidents/{incident_id}", headers=auth("viewer")).json()
    planned = {a["action"]["action_id"]: a["outcome"] for a in detail["actions"]}
    assert planned["restart-deployment"] == "execute"
    # ... the report says what the runner did: held by the rate limit, waiting for a person.
    actions = {a["id"]: a for a in report["actions"]}
    restart = actions["restart-deployment"]
    assert restart["source"] == "runner" and restart["status"] == "pending"
    assert restart["decision"] == "await_approval" and "rate limit" in restart["reason"]
    kill = actions["kill-idle-db-connections"]
    assert kill["status"] == "pending" and kill["missing_params"] == ["cluster", "database"]
    assert {"id", "risk", "target", "params", "decision", "reason"} <= set(restart)  # old names kept
    assert [e["event"] for e in report["audit"]].count("action_decision:await_approval") == 2
    assert "restart-deployment" not in target.ran()

    markdown = _report(client, incident_id, "markdown")
    assert "| restart-deployment | low | orders | awaits approval | rate limit" in markdown
    assert "needs parameters: cluster, database" in markdown
    assert "would run automatically" not in markdown

    html = _report(client, incident_id, "html")
    assert "<h2>Audit log (actions)</h2>" in html and "rate limit" in html
    assert "needs parameters:\ncluster, database" in html

    # A responder completes the parameters at approval; it runs, and the report says who approved it.
    ok = client.post(
        f"/v1/actions/{kill['request_id']}/approve",
        json={
            "reason": "idle in transaction for minutes",
            "params": {k: KILL_PARAMS[k] for k in ("cluster", "database")},
        },
        headers=auth("responder"),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "succeeded" and "kill-idle-db-connections" in target.ran()
    [hook] = [c for c in target.calls if c.path == "/hooks/kill-idle-db-connections"]
    assert hook.body["params"] == {**KILL_PARAMS, "idle_seconds": 300}  # the schema default
    after = {a["id"]: a for a in _report(client, incident_id, "json")["actions"]}
    assert after["kill-idle-db-connections"]["status_label"] == "succeeded (approved by responder-user)"
    # Parameters outside what was missing are refused (422), and nothing runs.
    bad = client.post(
        f"/v1/actions/{restart['request_id']}/approve",
        json={"params": {"deployment": "payments"}},
        headers=auth("responder"),
    )
    assert bad.status_code == 422 and "restart-deployment" not in target.ran()

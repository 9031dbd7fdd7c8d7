"""The approval and kill-switch endpoints on a real app (SQLite), with roles."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from opsagent.api.app import create_app
from opsagent.autonomy.approvals import ActionStatus
from opsagent.autonomy.runner import proposal
from opsagent.config import ApiToken, PolicyRule, Settings
from opsagent.domain import AutonomyLevel

from .conftest import REPO, Target, add_deployment

TOKENS = {"viewer": "v-token", "responder": "r-token", "admin": "a-token"}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def client(tmp_path, target: Target) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {
            "data_dir": str(tmp_path),
            "runbooks_dir": str(REPO / "runbooks"),
            "embedding": "hashing",
            "autonomy_level": "L2",
            "autonomy": {
                "rules": [PolicyRule().model_dump()],
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
    app = create_app(settings, sources=[])
    with TestClient(app) as c:
        yield c


def _queue(client: TestClient, service: str = "orders") -> str:
    from opsagent.api.routes.actions import action_runner

    class Req:  # the route helper only needs request.app
        app = client.app

    runtime = client.app.state.runtime
    runner = action_runner(Req(), runtime)  # type: ignore[arg-type]
    req = runner.handle(
        "inc-api",
        proposal(
            "restart-deployment",
            service,
            {"namespace": "shop", "deployment": service},
            namespace="shop",
            runbook_id="rb",
        ),
        0.9,
    )
    assert req.status is ActionStatus.PENDING
    return req.id


def test_pending_list_approve_with_roles_and_audit(client: TestClient, target: Target):
    add_deployment(target, "orders")
    rid = _queue(client)
    listed = client.get("/v1/actions", params={"status": "pending"}, headers=auth("viewer"))
    assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [rid]
    assert (
        client.post(f"/v1/actions/{rid}/approve", json={"reason": "go"}, headers=auth("viewer")).status_code
        == 403
    )
    assert client.post(f"/v1/actions/{rid}/approve", json={}).status_code == 401
    assert target.ran() == []
    ok = client.post(f"/v1/actions/{rid}/approve", json={"reason": "go"}, headers=auth("responder"))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert (
        body["status"] == "succeeded"
        and body["decided_by"] == "responder-user"
        and body["decision_note"] == "go"
    )
    assert target.ran() == ["restart-deployment"]
    again = client.post(f"/v1/actions/{rid}/approve", json={}, headers=auth("responder"))
    assert again.status_code == 409
    audit = client.get("/v1/audit", params={"incident_id": "inc-api"}, headers=auth("viewer")).json()
    assert [e["kind"] for e in audit] == ["decision", "approval", "execution_started", "execution_result"]
    assert audit[1]["actor"] == "responder-user"


def test_reject_and_unknown(client: TestClient, target: Target):
    rid = _queue(client)
    r = client.post(f"/v1/actions/{rid}/reject", json={"reason": "no"}, headers=auth("responder"))
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert client.post("/v1/actions/nope/approve", json={}, headers=auth("responder")).status_code == 404
    assert target.ran() == []


def test_kill_switch_needs_admin_and_blocks_approved_actions(client: TestClient, target: Target):
    add_deployment(target, "orders")
    rid = _queue(client)
    assert client.put("/v1/killswitch", json={"on": True}, headers=auth("responder")).status_code == 403
    on = client.put("/v1/killswitch", json={"on": True, "reason": "incident review"}, headers=auth("admin"))
    assert on.status_code == 200 and on.json()["on"] and on.json()["actor"] == "admin-user"
    assert client.get("/v1/killswitch", headers=auth("viewer")).json()["on"]
    r = client.post(f"/v1/actions/{rid}/approve", json={}, headers=auth("responder"))
    assert r.status_code == 200 and r.json()["status"] == "blocked"
    assert target.ran() == []
    assert client.put("/v1/killswitch", json={"on": False}, headers=auth("admin")).json()["on"] is False
    assert AutonomyLevel.L2  # level unchanged by the switch

"""Notifiers against a real local HTTP endpoint: pages on failures, information on approvals, and a
notifier that fails (HTTP 500, timeout, nothing listening) is logged and audited, never fatal.

Notifications are sent from a queue: ``settle()`` waits until what was queued is delivered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from opsagent.autonomy.approvals import ActionStatus
from opsagent.autonomy.audit import InMemoryAuditLog, verify_chain
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.killswitch import InMemoryKillSwitch
from opsagent.autonomy.memory_store import InMemoryActionStore
from opsagent.autonomy.notify import Notification, Notifiers, WebhookNotifier
from opsagent.autonomy.runner import ActionRunner, RunnerParts, proposal
from opsagent.autonomy.verify import VerifyResult
from opsagent.config import NotifySettings, WebhookNotifierSettings
from opsagent.domain import ActionSpec, AutonomyLevel, ProposedAction, Risk, VerifySpec

from .conftest import Target, add_deployment, free_port
from .helpers import CATALOG, Escalations, executors_for, policy

L = AutonomyLevel
KILL = {"cluster": "orders-db", "database": "orders", "idle_seconds": 600}


@dataclass
class Receiver:
    """A webhook endpoint (Slack / Teams / PagerDuty stand-in) recording what it receives."""

    url: str
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def bodies(self, path: str = "/hook") -> list[Any]:
        return [b for p, _, b in self.received if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    rec = Receiver(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
            if rec.delay:
                time.sleep(rec.delay)
            self.send_response(rec.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# The notifiers the runners of a test send through, so the test can wait for their deliveries.
_SENDERS: list[Notifiers] = []


def settle() -> None:
    for sender in _SENDERS:
        assert sender.flush(15), "notifications still queued"


def hook(receiver: Receiver, path: str = "/hook", **kw: Any) -> WebhookNotifierSettings:
    return WebhookNotifierSettings.model_validate({"url": receiver.url + path, **kw})


def runner_with(
    target: Target, level: L, notify: NotifySettings, **kw: Any
) -> tuple[ActionRunner, InMemoryAuditLog]:
    audit = InMemoryAuditLog()
    sender = Notifiers.from_settings(notify)
    _SENDERS.append(sender)
    runner = ActionRunner(
        RunnerParts(
            level=level,
            policy=kw.pop("pol", policy()),
            catalog=kw.pop("catalog", CATALOG),
            executors=executors_for(target),
            store=InMemoryActionStore(),
            audit=audit,
            kill_switch=InMemoryKillSwitch(),
            notifiers=sender,
            **kw,
        )
    )
    return runner, audit


def test_a_failed_automatic_action_pages_with_auth_header(target: Target, receiver: Receiver):
    target.hook_status = 500  # the automation endpoint fails the job
    notify = NotifySettings(
        webhooks=[hook(receiver, token=SecretStr("s3cret"), auth_header="X-Token", auth_scheme="")],
        base_url="https://opsagent.example.com",
    )
    runner, audit = runner_with(target, L.L3, notify)
    req = runner.handle("inc-n", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.FAILED
    settle()
    [(_path, headers, body)] = receiver.received
    assert headers["x-token"] == "s3cret" and headers["content-type"] == "application/json"
    assert body["kind"] == "action_failed" and body["severity"] == "page"
    assert body["incident_id"] == "inc-n" and body["requests"][0]["id"] == req.id
    assert "HTTP 500" in body["text"] and "kill-idle-db-connections on orders" in body["text"]
    # The incident's page in the console (a browser signs in, then lands there).
    assert body["url"] == "https://opsagent.example.com/incidents/inc-n"
    kinds = [(e.kind, e.outcome) for e in audit.entries(request_id=req.id)]
    assert kinds[-2:] == [("escalation", "escalated"), ("notification", "queued")]


class FailingVerifier:
    def verify(self, spec: VerifySpec, action: ProposedAction) -> VerifyResult:
        return VerifyResult(status="failed", query=spec.promql, reason="error ratio still 12%", attempts=3)


def test_failed_verification_pages_with_what_the_rollback_did(target: Target, receiver: Receiver):
    add_deployment(target, "orders")
    params = {"type": "object", "properties": {"node": {"type": "string"}}, "required": ["node"]}
    catalog = ActionCatalog(
        [
            ActionSpec(
                id="cordon-node",
                risk=Risk.MEDIUM,
                executor="kubernetes",
                params=params,
                verify=VerifySpec(promql="up", wait="1s"),
                rollback="uncordon-node",
            ),
            ActionSpec(id="uncordon-node", risk=Risk.LOW, executor="kubernetes", params=params),
        ]
    )
    # Only pages reach this endpoint (what a PagerDuty integration would be set to).
    notify = NotifySettings(webhooks=[hook(receiver, min_severity="page")])
    esc = Escalations()
    runner, _ = runner_with(target, L.L4, notify, catalog=catalog, verifier=FailingVerifier(), escalator=esc)
    req = runner.handle("inc-v", proposal("cordon-node", "node-1", {"node": "node-1"}, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.ROLLED_BACK
    settle()
    [body] = receiver.bodies()
    assert body["kind"] == "verification_failed" and body["severity"] == "page"
    assert "error ratio still 12%" in body["text"] and "rolled back with uncordon-node" in body["text"]
    assert len(esc.seen) == 1  # the escalator seam is still called


def test_failed_rollback_says_so(target: Target, receiver: Receiver):
    params = {"type": "object", "properties": {"node": {"type": "string"}}, "required": ["node"]}
    catalog = ActionCatalog(
        [
            ActionSpec(
                id="bump",
                risk=Risk.LOW,
                executor="http",
                params=params,
                verify=VerifySpec(promql="up", wait="1s"),
                rollback="unbump",
            ),
            ActionSpec(id="unbump", risk=Risk.LOW, executor="http", params=params),
        ]
    )
    calls = iter([200, 500])  # the action works, its rollback does not
    target.on_write = lambda call: setattr(target, "hook_status", next(calls))
    runner, _ = runner_with(
        target, L.L4, NotifySettings(webhooks=[hook(receiver)]), catalog=catalog, verifier=FailingVerifier()
    )
    req = runner.handle("inc-r", proposal("bump", "orders", {"node": "n1"}, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.FAILED
    settle()
    [body] = receiver.bodies()
    assert "ROLLBACK FAILED" in body["text"] and "HTTP 500" in body["text"]


def test_actions_awaiting_approval_are_sent_as_information_not_pages(target: Target, receiver: Receiver):
    add_deployment(target, "orders")
    notify = NotifySettings(webhooks=[hook(receiver, "/chat"), hook(receiver, "/pager", min_severity="page")])
    runner, audit = runner_with(target, L.L2, notify)
    req = runner.handle(
        "inc-a",
        proposal(
            "restart-deployment", "orders", {"namespace": "shop", "deployment": "orders"}, runbook_id="rb"
        ),
        0.9,
    )
    assert req.status is ActionStatus.PENDING
    settle()
    assert receiver.bodies("/pager") == []
    [body] = receiver.bodies("/chat")
    assert body["kind"] == "approval_needed" and body["severity"] == "info"
    assert body["requests"][0]["id"] == req.id and "restart-deployment on orders" in body["text"]
    assert [e.outcome for e in audit.entries() if e.kind == "notification"] == ["queued"]


@pytest.mark.parametrize("failure", ["http-500", "timeout", "nobody-listening"])
def test_a_failing_notifier_is_logged_and_audited_and_changes_nothing(
    target: Target, receiver: Receiver, failure: str, caplog: pytest.LogCaptureFixture
):
    add_deployment(target, "orders")
    if failure == "http-500":
        bad = hook(receiver)
        receiver.status = 500
    elif failure == "timeout":
        bad = hook(receiver, timeout_seconds=0.3)
        receiver.delay = 2.0
    else:
        bad = WebhookNotifierSettings(url=f"http://127.0.0.1:{free_port()}/hook", name="dead")
    target.hook_status = 500
    runner, audit = runner_with(target, L.L3, NotifySettings(webhooks=[bad], retry_backoff_seconds=0.05))
    started = time.monotonic()
    req = runner.handle("inc-f", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    assert time.monotonic() - started < 1.0  # the action never waits for the sink
    assert req.status is ActionStatus.FAILED  # the action's own outcome, untouched
    settle()
    [note] = [e for e in audit.entries() if e.kind == "notification" and e.outcome == "failed"]
    assert note.outcome == "failed" and note.request_id == req.id
    expected = {"http-500": "HTTP 500", "timeout": "timed out", "nobody-listening": "ConnectError"}[failure]
    assert expected in note.reason
    assert any("notification action_failed" in r.getMessage() for r in caplog.records)
    assert verify_chain(audit.entries())


def test_pagerduty_format(receiver: Receiver):
    settings = hook(receiver, format="pagerduty", routing_key=SecretStr("R0UTING"))
    note = Notification(
        kind="action_failed", severity="page", incident_id="inc-p", title="opsagent: x failed", text="details"
    )
    WebhookNotifier(settings).send(note)
    [body] = receiver.bodies()
    assert body["routing_key"] == "R0UTING" and body["event_action"] == "trigger"
    assert body["dedup_key"] == "opsagent-inc-p-action_failed"
    assert body["payload"]["severity"] == "critical" and body["payload"]["summary"] == "opsagent: x failed"


def test_a_failed_action_is_told_below_l3_too(target: Target, receiver: Receiver):
    # Issue 21: whatever the level, a person hears about an action that failed (below L3 nobody is paged
    # by the escalator, but the notification goes out).
    from opsagent.autonomy.approvals import Approvals

    target.hook_status = 500
    runner, _ = runner_with(target, L.L2, NotifySettings(webhooks=[hook(receiver)]))
    req = runner.handle("inc-l2", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.PENDING
    Approvals(runner.store, runner.audit, catalog=runner.catalog).approve(req.id, "alice", "go ahead")
    done = runner.run_approved(req.id, "alice")
    assert done.status is ActionStatus.FAILED
    settle()
    failed = [b for b in receiver.bodies() if b["kind"] == "action_failed"]
    assert failed and failed[0]["severity"] == "page" and "HTTP 500" in failed[0]["text"]

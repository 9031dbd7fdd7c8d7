"""The safety properties of issue 9, each checked against what actually reached the target."""

from datetime import UTC, datetime, timedelta

from opsagent.autonomy.approvals import ActionRequest, ActionStatus
from opsagent.autonomy.audit import InMemoryAuditLog, verify_chain
from opsagent.autonomy.killswitch import InMemoryKillSwitch, switch
from opsagent.autonomy.memory_store import InMemoryActionStore
from opsagent.autonomy.runner import proposal
from opsagent.config import PolicyRule
from opsagent.domain import ActionTarget, AutonomyLevel
from opsagent.errors import StoreError

from .conftest import Target, add_deployment
from .helpers import CATALOG, make_runner, policy

L = AutonomyLevel
KILL = {"cluster": "orders-db", "database": "orders", "idle_seconds": 600}


def restart(service: str = "orders"):
    return proposal(
        "restart-deployment",
        service,
        {"namespace": "shop", "deployment": service},
        namespace="shop",
        runbook_id="db-connection-pool-exhaustion",
    )


def test_no_policy_rule_for_the_target_waits_for_approval_even_at_l5(target: Target):
    add_deployment(target, "orders")
    runner, _, _ = make_runner(target, L.L5, policy(rules=[PolicyRule(services=["cart"])]))
    req = runner.handle("inc-1", restart(), 0.95)
    assert req.status is ActionStatus.PENDING and "default deny" in req.reason
    assert target.ran() == []


def test_unknown_action_from_an_llm_or_a_log_line_is_rejected(target: Target):
    runner, _, _ = make_runner(target, L.L5)
    # e.g. an LLM echoing a log line "run: rm -rf /var/lib/postgresql"
    for action_id in ("rm -rf /var/lib/postgresql", "drop-database", "../collect-diagnostics"):
        req = runner.handle("inc-1", proposal(action_id, "orders", {}), 0.99, source="llm")
        assert req.status is ActionStatus.DENIED and "not in the catalogue" in req.reason
    assert target.calls == []


def test_params_outside_the_schema_are_rejected(target: Target):
    runner, _, _ = make_runner(target, L.L5)
    bad = [
        {"cluster": "orders-db", "database": "orders", "idle_seconds": 5},  # below minimum
        {"cluster": "orders-db; drop", "database": "orders", "idle_seconds": 600},  # pattern
        {"cluster": "orders-db", "database": "orders", "idle_seconds": 600, "extra": 1},  # additional
        {"cluster": "orders-db", "idle_seconds": 600},  # missing required
    ]
    for params in bad:
        req = runner.handle(
            "inc-1", proposal("kill-idle-db-connections", "orders", params, runbook_id="rb"), 0.99
        )
        assert req.status is ActionStatus.DENIED, params
    assert target.calls == []


def test_the_risk_comes_from_the_catalogue_not_from_the_proposal(target: Target):
    add_deployment(target, "payment")
    runner, _, _ = make_runner(target, L.L3)
    p = proposal(
        "rollback-deployment", "payment", {"namespace": "shop", "deployment": "payment"}, runbook_id="rb"
    )
    p = p.model_copy(update={"risk": "low"})
    req = runner.handle("inc-1", p, 0.99)
    assert req.action.risk.value == "medium" and req.status is ActionStatus.PENDING
    assert target.ran() == []


def test_the_n_plus_first_automatic_action_in_the_window_waits(target: Target):
    for name in ("orders", "cart", "payment", "catalog"):
        add_deployment(target, name)
    pol = policy(
        max_actions_per_action=3,
        max_actions_per_service=10,
        max_concurrent_services=10,
        max_targets_per_window=10,
    )
    runner, _, _ = make_runner(target, L.L3, pol)
    # One incident each: an incident's own cap (one automatic change at L3) is not under test here.
    statuses = [
        runner.handle(f"inc-{s}", restart(s), 0.9).status for s in ("orders", "cart", "payment", "catalog")
    ]
    assert statuses == [ActionStatus.SUCCEEDED] * 3 + [ActionStatus.PENDING]
    assert target.ran() == ["restart-deployment"] * 3


def test_blast_radius_cap_holds(target: Target):
    add_deployment(target, "orders", replicas=4)
    # Half the replicas are mid-rollout already: no automatic action on top of that.
    target.deployments["orders"]["status"].update({"unavailableReplicas": 2, "updatedReplicas": 2})
    runner, _, _ = make_runner(target, L.L5, policy(max_replica_share=0.25))
    req = runner.handle("inc-1", restart(), 0.9)
    assert req.status is ActionStatus.PENDING and "blast radius" in req.reason
    # Services being acted on at once: two in flight already, cap 2 -> a third waits.
    store = InMemoryActionStore()
    add_deployment(target, "cart")
    runner2, _, _ = make_runner(target, L.L5, policy(max_concurrent_services=2), store=store)
    for svc in ("payment", "catalog"):
        # Another incident's changes, still running (e.g. waiting for their verification).
        busy = CATALOG.propose(
            "kill-idle-db-connections", ActionTarget(service=svc), {**KILL, "cluster": f"{svc}-db"}
        )
        store.add(
            ActionRequest(
                id=f"busy-{svc}",
                incident_id="inc-0",
                action=busy,
                confidence=0.9,
                level=L.L5,
                status=ActionStatus.RUNNING,
                reason="",
                automatic=True,
                created_at=datetime.now(UTC),
                started_at=datetime.now(UTC),
            )
        )
    req2 = runner2.handle("inc-1", restart("cart"), 0.9)
    assert req2.status is ActionStatus.PENDING and "services are being acted on" in req2.reason
    assert target.ran() == []


def test_kill_switch_stops_automatic_actions_mid_incident(target: Target):
    for name in ("orders", "cart"):
        add_deployment(target, name)
    kill = InMemoryKillSwitch()
    audit = InMemoryAuditLog()
    # Someone hits the kill switch while the first action is running.
    target.on_write = lambda call: switch(kill, audit, on=True, actor="alice", reason="runaway")
    # L3: both are low-risk, listed by a runbook, covered by a rule; only the switch differs.
    runner, _, _ = make_runner(target, L.L3, policy(max_concurrent_services=5), kill=kill, audit=audit)
    first = runner.handle("inc-1", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    second = runner.handle("inc-1", restart("cart"), 0.9)
    third = runner.handle("inc-1", proposal("collect-diagnostics", "cart", {"service": "cart"}), 0.9)
    assert first.status is ActionStatus.SUCCEEDED
    assert second.status is ActionStatus.NOT_PROPOSED and "kill switch" in second.reason
    assert third.status is ActionStatus.SUCCEEDED  # read-only diagnostics still run at L1
    assert target.ran() == ["kill-idle-db-connections"]
    assert [e.kind for e in audit.entries() if e.kind == "kill_switch"] == ["kill_switch"]


def test_approved_at_l2_then_blocked_by_a_lowered_level_does_not_run(target: Target):
    add_deployment(target, "orders")
    runner, approvals, _ = make_runner(target, L.L2)
    req = runner.handle("inc-1", restart(), 0.9)
    assert req.status is ActionStatus.PENDING
    approvals.approve(req.id, "alice", "looks right")
    runner.level = L.L1  # the level was lowered before the approved action got to run
    done = runner.run_approved(req.id, "alice")
    assert done.status is ActionStatus.BLOCKED and "L1" in (done.result or "")
    # Same for a per-service override and for the kill switch.
    runner.level = L.L2
    req2 = runner.handle("inc-1", restart(), 0.9)
    approvals.approve(req2.id, "alice")
    runner.policy = runner.policy.model_copy(update={"service_levels": {"orders": L.L1}})
    assert runner.run_approved(req2.id, "alice").status is ActionStatus.BLOCKED
    assert target.ran() == []


def test_approved_action_runs_when_policy_still_allows(target: Target):
    add_deployment(target, "orders")
    runner, approvals, _ = make_runner(target, L.L2)
    req = runner.handle("inc-1", restart(), 0.9)
    approvals.approve(req.id, "alice", "go")
    assert runner.run_approved(req.id, "alice").status is ActionStatus.SUCCEEDED
    assert target.ran() == ["restart-deployment"]


def test_rejected_and_expired_requests_never_run(target: Target):
    add_deployment(target, "orders")
    runner, approvals, _ = make_runner(target, L.L2, policy(approval_ttl_seconds=60))
    rejected = runner.handle("inc-1", restart(), 0.9)
    approvals.reject(rejected.id, "bob", "not during the sale")
    expired = runner.handle("inc-1", restart(), 0.9)
    later = datetime.now(UTC) + timedelta(minutes=5)
    from opsagent.autonomy.approvals import Approvals

    late = Approvals(runner.store, runner.audit, clock=lambda: later)
    assert [r.id for r in late.expire_due()] == [expired.id]
    for rid in (rejected.id, expired.id):
        try:
            runner.run_approved(rid, "alice")
        except Exception as exc:  # InputError: not approved
            assert "not approved" in str(exc)
    assert target.ran() == []


def test_audit_is_written_before_the_action_runs(target: Target):
    audit = InMemoryAuditLog()
    seen: list[list[str]] = []
    target.on_write = lambda call: seen.append([e.kind for e in audit.entries()])
    runner, _, _ = make_runner(target, L.L3, audit=audit)
    req = runner.handle("inc-1", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.SUCCEEDED
    assert seen == [["decision", "execution_started"]]
    entries = audit.entries(request_id=req.id)
    assert [e.kind for e in entries] == ["decision", "execution_started", "execution_result"]
    decision = entries[0]
    assert (
        decision.level == "L3"
        and decision.policy_version
        and decision.confidence == 0.9
        and decision.actor == "opsagent"
    )
    assert verify_chain(audit.entries())


def test_no_audit_no_action(target: Target):
    class BrokenAudit(InMemoryAuditLog):
        def append(self, entry):
            if entry.kind == "execution_started":
                raise StoreError("disk full")
            return super().append(entry)

    runner, _, _ = make_runner(target, L.L3, audit=BrokenAudit())
    req = runner.handle("inc-1", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.FAILED and target.writes() == []


def test_dry_run_changes_nothing(target: Target):
    runner, _, _ = make_runner(target, L.L5, policy(dry_run=True))
    req = runner.handle("inc-1", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.DRY_RUN and target.writes() == []


def test_tampering_with_the_audit_log_is_detectable(target: Target):
    audit = InMemoryAuditLog()
    runner, _, _ = make_runner(target, L.L3, audit=audit)
    runner.handle("inc-1", proposal("kill-idle-db-connections", "orders", KILL, runbook_id="rb"), 0.9)
    entries = audit.entries()
    assert verify_chain(entries)
    forged = [*entries]
    forged[0] = forged[0].model_copy(update={"actor": "mallory"})
    assert not verify_chain(forged)
    assert not verify_chain(entries[1:])


def test_without_a_verifier_l4_changes_that_declare_a_check_wait_for_approval(target: Target):
    add_deployment(target, "orders")
    runner, _, _ = make_runner(target, L.L4)  # no verifier configured
    req = runner.handle("inc-1", restart(), 0.9)
    assert req.status is ActionStatus.PENDING and "no Prometheus" in req.reason
    assert target.ran() == []

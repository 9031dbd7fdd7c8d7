"""decide() over every level × risk × confidence × per-service override × kill switch.

The expected outcome is computed by a separate, deliberately plain reading of the level table in
DESIGN.md, so a change to decide() that breaks the table fails here.
"""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from opsagent.autonomy.policy import ActionRecord, History, TargetState, decide, policy_version
from opsagent.config import AutonomySettings, MaintenanceWindow, PolicyRule
from opsagent.domain import ActionTarget, AutonomyLevel, DecisionOutcome, ProposedAction, ResolvedTarget, Risk

L = AutonomyLevel
THRESHOLD = 0.7
NOW = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)
# What each level runs on its own, straight from the DESIGN.md table.
AUTOMATIC = {
    L.L0: set(),
    L.L1: {"read"},
    L.L2: {"read"},
    L.L3: {"read", "low"},
    L.L4: {"read", "low", "medium"},
    L.L5: {"read", "low", "medium", "high"},
}


def act(
    risk: Risk, service: str = "orders", action_id: str | None = None, runbook: str | None = "rb"
) -> ProposedAction:
    return ProposedAction(
        action_id=action_id or f"act-{risk.value}",
        risk=risk,
        target=ActionTarget(service=service, namespace="shop"),
        runbook_id=runbook,
        # As the catalogue resolves a deployment named like the service.
        resolved=ResolvedTarget(kind="deployment", name=service, namespace="shop", service=service),
    )


def expected(
    level: AutonomyLevel, risk: Risk, confidence: float, override: AutonomyLevel | None, kill: bool
) -> str:
    eff = level
    if override is not None and override.rank < eff.rank:
        eff = override
    if kill and eff.rank > 1:
        eff = L.L1
    if eff is L.L0:
        return "not_proposed"
    if risk is Risk.READ:
        return "execute"
    if eff is L.L1:
        return "not_proposed"
    if risk.value not in AUTOMATIC[eff]:
        return "await_approval"
    if confidence < THRESHOLD:
        return "await_approval"
    return "execute"


CASES = list(itertools.product(list(L), list(Risk), [0.5, 0.9], [None, L.L0, L.L2, L.L5], [False, True]))


@pytest.mark.parametrize(("level", "risk", "confidence", "override", "kill"), CASES)
def test_level_table(level, risk, confidence, override, kill):
    policy = AutonomySettings(
        rules=[PolicyRule()],
        confidence_threshold=THRESHOLD,
        service_levels={"orders": override} if override else {},
        kill_switch=kill,
    )
    decision = decide(act(risk), level, policy, confidence, history=History(now=NOW))
    assert decision.outcome.value == expected(level, risk, confidence, override, kill), decision.reason
    # Verification is promised exactly where the table says so: automatic changes at L4 and L5.
    assert decision.verify_after == (
        decision.outcome is DecisionOutcome.EXECUTE and risk is not Risk.READ and decision.level.rank >= 4
    )


def test_table_has_every_combination():
    assert len(CASES) == 6 * 4 * 2 * 4 * 2


@pytest.mark.parametrize("level", list(L))
def test_no_rule_for_the_target_waits_even_at_l5(level):
    policy = AutonomySettings(rules=[PolicyRule(services=["cart"])])
    decision = decide(act(Risk.LOW, service="orders"), level, policy, 0.99, history=History(now=NOW))
    if level.rank >= 2:
        assert decision.outcome is DecisionOutcome.AWAIT_APPROVAL
    else:
        assert decision.outcome is DecisionOutcome.NOT_PROPOSED
    # The same action on the covered service runs from L3 up.
    covered = decide(act(Risk.LOW, service="cart"), level, policy, 0.99, history=History(now=NOW))
    assert (covered.outcome is DecisionOutcome.EXECUTE) == (level.rank >= 3)


def test_rule_must_cover_namespace_too():
    policy = AutonomySettings(rules=[PolicyRule(namespaces=["staging"])])
    decision = decide(act(Risk.LOW), L.L5, policy, 0.99)
    assert decision.outcome is DecisionOutcome.AWAIT_APPROVAL and "default deny" in decision.reason


ALLOW = AutonomySettings(
    rules=[PolicyRule()],
    max_actions_per_service=2,
    max_actions_per_action=3,
    rate_window_seconds=600,
    max_concurrent_services=2,
    max_replica_share=0.25,
)


def done(action_id: str, service: str, minutes_ago: float, running: bool = False) -> ActionRecord:
    started = NOW - timedelta(minutes=minutes_ago)
    return ActionRecord(
        action_id=action_id,
        service=service,
        started_at=started,
        finished_at=None if running else started + timedelta(seconds=30),
    )


def test_rate_limit_per_service_holds_the_next_action():
    first = History(now=NOW, actions=(done("restart", "orders", 5),))
    assert decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=first).outcome is DecisionOutcome.EXECUTE
    second = History(now=NOW, actions=(done("restart", "orders", 5), done("scale", "orders", 3)))
    d = decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=second)
    assert d.outcome is DecisionOutcome.AWAIT_APPROVAL and "rate limit" in d.reason
    # Outside the window they no longer count.
    old = History(now=NOW, actions=(done("restart", "orders", 50), done("scale", "orders", 30)))
    assert decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=old).outcome is DecisionOutcome.EXECUTE


def test_rate_limit_per_action_across_services():
    hist = History(now=NOW, actions=tuple(done("restart", s, 2) for s in ("a", "b", "c")))
    # Room for more targets in the window: only the per-action limit is under test here.
    roomy = ALLOW.model_copy(update={"max_targets_per_window": 10})
    d = decide(act(Risk.LOW, action_id="restart"), L.L5, roomy, 0.9, history=hist)
    assert d.outcome is DecisionOutcome.AWAIT_APPROVAL and "runs of restart" in d.reason
    assert (
        decide(act(Risk.LOW, action_id="other"), L.L5, roomy, 0.9, history=hist).outcome
        is DecisionOutcome.EXECUTE
    )


def test_blast_radius_caps_concurrent_services_and_replica_share():
    busy = History(
        now=NOW, actions=(done("x", "cart", 1, running=True), done("y", "payment", 1, running=True))
    )
    d = decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=busy)
    assert d.outcome is DecisionOutcome.AWAIT_APPROVAL and "blast radius" in d.reason
    one_busy = History(now=NOW, actions=(done("x", "cart", 1, running=True),))
    assert decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=one_busy).outcome is DecisionOutcome.EXECUTE
    same = History(now=NOW, actions=(done("x", "orders", 1, running=True),))
    assert decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=same).outcome is DecisionOutcome.AWAIT_APPROVAL
    # 1 of 4 replicas busy is at the cap (25%): allowed; 2 of 4 is over it.
    ok = decide(
        act(Risk.LOW),
        L.L5,
        ALLOW,
        0.9,
        history=History(now=NOW),
        target=TargetState(replicas=4, replicas_acted_on=1),
    )
    over = decide(
        act(Risk.LOW),
        L.L5,
        ALLOW,
        0.9,
        history=History(now=NOW),
        target=TargetState(replicas=4, replicas_acted_on=2),
    )
    assert ok.outcome is DecisionOutcome.EXECUTE
    assert over.outcome is DecisionOutcome.AWAIT_APPROVAL and "2/4 replicas" in over.reason


def test_maintenance_windows_one_off_and_weekly():
    one_off = ALLOW.model_copy(
        update={
            "maintenance_windows": [
                MaintenanceWindow(
                    services=["orders"],
                    start=NOW - timedelta(hours=1),
                    end=NOW + timedelta(hours=1),
                    reason="db upgrade",
                )
            ]
        }
    )
    d = decide(act(Risk.LOW), L.L5, one_off, 0.9, history=History(now=NOW))
    assert d.outcome is DecisionOutcome.AWAIT_APPROVAL and "db upgrade" in d.reason
    assert (
        decide(act(Risk.LOW, service="cart"), L.L5, one_off, 0.9, history=History(now=NOW)).outcome
        is DecisionOutcome.EXECUTE
    )
    later = History(now=NOW + timedelta(hours=2))
    assert decide(act(Risk.LOW), L.L5, one_off, 0.9, history=later).outcome is DecisionOutcome.EXECUTE
    # NOW is a Friday 09:40 UTC; a Thursday 22:00-10:00 window spans midnight into Friday morning.
    from datetime import time

    weekly = ALLOW.model_copy(
        update={"maintenance_windows": [MaintenanceWindow(days=[4], from_time=time(22), to_time=time(10))]}
    )
    assert NOW.isoweekday() == 5
    assert (
        decide(act(Risk.LOW), L.L5, weekly, 0.9, history=History(now=NOW)).outcome
        is DecisionOutcome.AWAIT_APPROVAL
    )
    assert (
        decide(act(Risk.LOW), L.L5, weekly, 0.9, history=History(now=NOW + timedelta(hours=1))).outcome
        is DecisionOutcome.EXECUTE
    )
    # Without a clock the gate cannot rule a window out.
    assert decide(act(Risk.LOW), L.L5, weekly, 0.9).outcome is DecisionOutcome.AWAIT_APPROVAL
    # Read-only diagnostics are not held back by any of it.
    assert decide(act(Risk.READ), L.L5, weekly, 0.9).outcome is DecisionOutcome.EXECUTE


def test_dry_run_marks_automatic_decisions():
    policy = ALLOW.model_copy(update={"dry_run": True})
    d = decide(act(Risk.LOW), L.L5, policy, 0.9, history=History(now=NOW))
    assert d.outcome is DecisionOutcome.EXECUTE and d.dry_run and d.reason.startswith("dry run")
    assert not decide(act(Risk.LOW), L.L5, ALLOW, 0.9, history=History(now=NOW)).dry_run


def test_decide_is_pure():
    hist = History(now=NOW, actions=(done("restart", "orders", 5),))
    a = decide(act(Risk.MEDIUM), L.L4, ALLOW, 0.9, history=hist, target=TargetState(replicas=3))
    b = decide(act(Risk.MEDIUM), L.L4, ALLOW, 0.9, history=hist, target=TargetState(replicas=3))
    assert a == b


def test_policy_version_changes_with_policy_not_with_credentials():
    from pydantic import SecretStr

    base = policy_version(ALLOW)
    assert policy_version(ALLOW.model_copy(update={"max_actions_per_service": 9})) != base
    http = ALLOW.http.model_copy(update={"token": SecretStr("rotated")})
    assert policy_version(ALLOW.model_copy(update={"http": http})) == base

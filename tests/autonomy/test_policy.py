import pytest

from opsagent.autonomy.policy import decide, effective_level
from opsagent.config import AutonomySettings, PolicyRule
from opsagent.domain import ActionTarget, AutonomyLevel, DecisionOutcome, ProposedAction, ResolvedTarget, Risk

ALLOW_ALL = AutonomySettings(rules=[PolicyRule()], confidence_threshold=0.7)


def action(risk: Risk, runbook: str | None = "rb", service: str = "orders") -> ProposedAction:
    return ProposedAction(
        action_id=f"act-{risk.value}",
        risk=risk,
        target=ActionTarget(service=service),
        runbook_id=runbook,
        resolved=ResolvedTarget(kind="deployment", name=service, service=service),
    )


EXPECTED = {
    # level: outcome for read, low, medium, high (a rule covers everything, confidence high)
    AutonomyLevel.L0: ["not_proposed"] * 4,
    AutonomyLevel.L1: ["execute", "not_proposed", "not_proposed", "not_proposed"],
    AutonomyLevel.L2: ["execute", "await_approval", "await_approval", "await_approval"],
    AutonomyLevel.L3: ["execute", "execute", "await_approval", "await_approval"],
    AutonomyLevel.L4: ["execute", "execute", "execute", "await_approval"],
    AutonomyLevel.L5: ["execute", "execute", "execute", "execute"],
}


@pytest.mark.parametrize("level", list(AutonomyLevel))
def test_level_table(level):
    got = [decide(action(r), level, ALLOW_ALL, 0.9).outcome.value for r in Risk]
    assert got == EXPECTED[level]


def test_default_deny_without_a_rule_even_at_l5():
    decision = decide(action(Risk.LOW), AutonomyLevel.L5, AutonomySettings(), 0.99)
    assert decision.outcome is DecisionOutcome.AWAIT_APPROVAL
    assert "no policy rule" in decision.reason


def test_low_confidence_waits_for_approval():
    assert (
        decide(action(Risk.LOW), AutonomyLevel.L3, ALLOW_ALL, 0.5).outcome is DecisionOutcome.AWAIT_APPROVAL
    )


def test_l3_runs_only_what_a_runbook_lists():
    assert decide(action(Risk.LOW, runbook=None), AutonomyLevel.L3, ALLOW_ALL, 0.9).outcome is (
        DecisionOutcome.AWAIT_APPROVAL
    )


def test_service_override_only_lowers_and_kill_switch_drops_to_l1():
    policy = AutonomySettings(service_levels={"orders": AutonomyLevel.L2, "cart": AutonomyLevel.L5})
    assert effective_level(AutonomyLevel.L4, "orders", policy) is AutonomyLevel.L2
    assert effective_level(AutonomyLevel.L3, "cart", policy) is AutonomyLevel.L3
    killed = policy.model_copy(update={"kill_switch": True})
    assert effective_level(AutonomyLevel.L5, "cart", killed) is AutonomyLevel.L1


def test_rule_scoping_by_service_and_risk():
    policy = AutonomySettings(rules=[PolicyRule(services=["cart"], max_risk=Risk.LOW)])
    assert (
        decide(action(Risk.LOW, service="cart"), AutonomyLevel.L5, policy, 0.9).outcome
        is DecisionOutcome.EXECUTE
    )
    assert decide(action(Risk.LOW, service="orders"), AutonomyLevel.L5, policy, 0.9).outcome is (
        DecisionOutcome.AWAIT_APPROVAL
    )
    assert decide(action(Risk.MEDIUM, service="cart"), AutonomyLevel.L5, policy, 0.9).outcome is (
        DecisionOutcome.AWAIT_APPROVAL
    )


@pytest.mark.parametrize("text", ["L7", "high", ""])
def test_unknown_level_is_rejected(text):
    with pytest.raises(ValueError, match="unknown autonomy level"):
        AutonomyLevel.parse(text)

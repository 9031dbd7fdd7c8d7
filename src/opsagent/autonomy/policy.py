"""The autonomy gate: ``decide()`` is a pure function of the action, level, policy and confidence.

Rules that hold at every level (DESIGN.md): default deny — an action runs without approval only
where a policy rule covers both the action and its target; the kill switch drops everything to L1;
a per-service level can only lower the global one. Read-only diagnostics change nothing, so they
run automatically from L1 up without needing a rule.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from opsagent.config import AutonomySettings, PolicyRule
from opsagent.domain import AutonomyLevel, Decision, DecisionOutcome, ProposedAction, Risk

_RISK_ORDER = {Risk.READ: 0, Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 3}
# The highest risk each level runs on its own (given a covering rule and enough confidence).
_AUTOMATIC_UP_TO: dict[AutonomyLevel, Risk | None] = {
    AutonomyLevel.L0: None,
    AutonomyLevel.L1: Risk.READ,
    AutonomyLevel.L2: Risk.READ,
    AutonomyLevel.L3: Risk.LOW,
    AutonomyLevel.L4: Risk.MEDIUM,
    AutonomyLevel.L5: Risk.HIGH,
}


def effective_level(level: AutonomyLevel, service: str, policy: AutonomySettings) -> AutonomyLevel:
    """The global level, lowered by a per-service override and by the kill switch."""
    result = level
    override = policy.service_levels.get(service)
    if override is not None and override.rank < result.rank:
        result = override
    if policy.kill_switch and result.rank > AutonomyLevel.L1.rank:
        result = AutonomyLevel.L1
    return result


def _covers(rule: PolicyRule, action: ProposedAction) -> bool:
    namespace = action.target.namespace or ""
    return (
        any(fnmatchcase(action.action_id, pat) for pat in rule.actions)
        and any(fnmatchcase(action.target.service, pat) for pat in rule.services)
        and any(fnmatchcase(namespace, pat) for pat in rule.namespaces)
        and _RISK_ORDER[action.risk] <= _RISK_ORDER[rule.max_risk]
    )


def covering_rule(action: ProposedAction, policy: AutonomySettings) -> PolicyRule | None:
    return next((rule for rule in policy.rules if _covers(rule, action)), None)


def decide(
    action: ProposedAction,
    level: AutonomyLevel,
    policy: AutonomySettings,
    confidence: float,
) -> Decision:
    """What the gate does with one proposed action at this level, and why."""
    lvl = effective_level(level, action.target.service, policy)

    def result(outcome: DecisionOutcome, reason: str, verify: bool = False) -> Decision:
        return Decision(action=action, outcome=outcome, level=lvl, reason=reason, verify_after=verify)

    if lvl is AutonomyLevel.L0:
        return result(DecisionOutcome.NOT_PROPOSED, "L0: evidence only, no actions")
    limit = _AUTOMATIC_UP_TO[lvl]
    if action.risk is Risk.READ:
        return result(DecisionOutcome.EXECUTE, f"{lvl.value}: read-only diagnostics run automatically")
    if lvl is AutonomyLevel.L1:
        why = "kill switch on: " if policy.kill_switch else ""
        return result(DecisionOutcome.NOT_PROPOSED, f"{why}L1: remediation is described as text only")
    assert limit is not None
    if _RISK_ORDER[action.risk] > _RISK_ORDER[limit]:
        return result(
            DecisionOutcome.AWAIT_APPROVAL, f"{lvl.value}: {action.risk.value}-risk actions need approval"
        )
    if covering_rule(action, policy) is None:
        return result(
            DecisionOutcome.AWAIT_APPROVAL,
            f"default deny: no policy rule covers {action.action_id} on {action.target.service}",
        )
    if lvl is AutonomyLevel.L3 and action.runbook_id is None:
        return result(
            DecisionOutcome.AWAIT_APPROVAL, "L3: only actions a matching runbook lists run automatically"
        )
    if confidence < policy.confidence_threshold:
        return result(
            DecisionOutcome.AWAIT_APPROVAL,
            f"confidence {confidence:.2f} below the threshold {policy.confidence_threshold:.2f}",
        )
    verify = lvl.rank >= AutonomyLevel.L4.rank
    return result(
        DecisionOutcome.EXECUTE,
        f"{lvl.value}: {action.risk.value}-risk action covered by policy, confidence {confidence:.2f}",
        verify,
    )

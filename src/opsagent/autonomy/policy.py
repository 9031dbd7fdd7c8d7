"""The autonomy gate: ``decide()`` is a pure function of (action, target, level, policy, confidence, history).

Rules that hold at every level (DESIGN.md): default deny — an action runs without approval only
where a policy rule covers both the action and its target; the kill switch drops everything to L1;
a per-service level can only lower the global one. Read-only diagnostics change nothing, so they
run automatically from L1 up without needing a rule, and rate limits, blast radius, maintenance
windows and dry-run do not hold them back either.

Everything that varies with time (the clock, what already ran, how much of the target is busy) comes
in through ``history`` and ``target``; the gate reads no clock and no store, so the same inputs give the
same decision in the pipeline, in the runner and in the table tests.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict

from opsagent.config import AutonomySettings, MaintenanceWindow, PolicyRule
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
# Connection details of the executors are not policy: rotating a token must not change the version.
_NOT_POLICY = {"http", "kubernetes", "script_dir", "script_timeout_seconds", "approval_sweep_seconds"}


class ActionRecord(BaseModel):
    """One action that ran (or is running) on a target; ``finished_at`` is None until verified/done.

    ``service`` is the resolved target's service (or its name, for objects of no one service) and
    ``target`` its full label: the limits count what was touched, not what was claimed.
    """

    model_config = ConfigDict(frozen=True)

    action_id: str
    service: str
    namespace: str | None = None
    target: str = ""
    incident_id: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    automatic: bool = True


class History(BaseModel):
    """What the gate knows about time and about what already happened.

    ``now`` is None when the caller has no clock to offer (the investigation's first pass): the gate
    then cannot tell whether a maintenance window is open, and treats a configured one as open.
    """

    model_config = ConfigDict(frozen=True)

    now: datetime | None = None
    actions: tuple[ActionRecord, ...] = ()
    # Automatic changes already started for the incident the action is for.
    incident_automatic: int = 0
    # Why the circuit breaker holds automatic actions back (a failure not yet reset), if it does.
    breaker: str | None = None


class TargetState(BaseModel):
    """How busy the target is right now: its replicas and how many are being restarted or replaced."""

    model_config = ConfigDict(frozen=True)

    replicas: int | None = None
    replicas_acted_on: int = 0


_NO_HISTORY = History()
_UNKNOWN_TARGET = TargetState()


def policy_version(policy: AutonomySettings) -> str:
    """A short stable hash of the policy (rules, thresholds, limits, windows), recorded with decisions."""
    data = policy.model_dump(mode="json", exclude=_NOT_POLICY)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def effective_level(level: AutonomyLevel, service: str, policy: AutonomySettings) -> AutonomyLevel:
    """The global level, lowered by a per-service override and by the kill switch."""
    result = level
    override = policy.service_levels.get(service)
    if override is not None and override.rank < result.rank:
        result = override
    if policy.kill_switch and result.rank > AutonomyLevel.L1.rank:
        result = AutonomyLevel.L1
    return result


def target_of(action: ProposedAction) -> tuple[str, str, str, str]:
    """(kind, service-or-name, namespace, label) of the resolved target, for rules and limits.

    An object of no one service (a node, a cluster) is matched by its own name, so a rule's
    ``services`` pattern never lets a service's rule reach it by accident (its kind must be listed).
    """
    resolved = action.resolved
    if resolved is None:
        ns = action.target.namespace or ""
        return "unresolved", action.target.service, ns, f"unresolved/{action.target.service}"
    return resolved.kind, resolved.service or resolved.name, resolved.namespace or "", resolved.label


def incident_cap(level: AutonomyLevel, policy: AutonomySettings) -> int:
    """Automatic changes one incident may make: one at L3, a small configured number above."""
    return 1 if level.rank <= AutonomyLevel.L3.rank else policy.max_automatic_per_incident


def _covers(rule: PolicyRule, action: ProposedAction) -> bool:
    kind, service, namespace, _ = target_of(action)
    return (
        any(fnmatchcase(action.action_id, pat) for pat in rule.actions)
        and any(fnmatchcase(kind, pat) for pat in rule.kinds)
        and any(fnmatchcase(service, pat) for pat in rule.services)
        and any(fnmatchcase(namespace, pat) for pat in rule.namespaces)
        and _RISK_ORDER[action.risk] <= _RISK_ORDER[rule.max_risk]
    )


def covering_rule(action: ProposedAction, policy: AutonomySettings) -> PolicyRule | None:
    return next((rule for rule in policy.rules if _covers(rule, action)), None)


def window_open(window: MaintenanceWindow, action: ProposedAction, now: datetime) -> bool:
    """Whether ``window`` covers the action's resolved target at ``now`` (an aware datetime)."""
    _, service, namespace, _ = target_of(action)
    if not any(fnmatchcase(service, pat) for pat in window.services):
        return False
    if not any(fnmatchcase(namespace, pat) for pat in window.namespaces):
        return False
    if window.start is not None or window.end is not None:
        after_start = window.start is None or now >= window.start
        before_end = window.end is None or now < window.end
        if after_start and before_end:
            return True
    if window.days and window.from_time is not None and window.to_time is not None:
        utc = now.astimezone(UTC)
        clock = utc.time()
        start, end = window.from_time.replace(tzinfo=None), window.to_time.replace(tzinfo=None)
        if start <= end:
            return utc.isoweekday() in window.days and start <= clock < end
        # Spans midnight: the evening belongs to the listed day, the early morning to the day after.
        if clock >= start:
            return utc.isoweekday() in window.days
        if clock < end:
            return (utc - timedelta(days=1)).isoweekday() in window.days
    return False


def _limits_reason(
    action: ProposedAction, policy: AutonomySettings, target: TargetState, history: History
) -> str | None:
    """Why rate limits, blast radius or a maintenance window hold an automatic action back, if they do."""
    _, service, _, label = target_of(action)
    if policy.maintenance_windows:
        if history.now is None:
            return "maintenance windows are configured and the time is unknown"
        for window in policy.maintenance_windows:
            if window_open(window, action, history.now):
                return f"maintenance window open on {service}" + (
                    f" ({window.reason})" if window.reason else ""
                )
    in_flight = [r for r in history.actions if r.finished_at is None]
    if history.now is not None:
        since = history.now - timedelta(seconds=policy.rate_window_seconds)
        recent = [r for r in history.actions if r.started_at >= since]
    else:
        recent = list(history.actions)
    window_text = f"{policy.rate_window_seconds:g}s"
    on_service = sum(1 for r in recent if r.service == service)
    if on_service >= policy.max_actions_per_service:
        return f"rate limit: {on_service} actions on {service} within {window_text} (max {policy.max_actions_per_service})"
    same_action = sum(1 for r in recent if r.action_id == action.action_id)
    if same_action >= policy.max_actions_per_action:
        return (
            f"rate limit: {same_action} runs of {action.action_id} within {window_text} "
            f"(max {policy.max_actions_per_action})"
        )
    busy = {r.service for r in in_flight}
    if service in busy:
        return f"blast radius: another action on {service} is still running or being verified"
    # Over time, not only at once: changes one after another add up as surely as parallel ones.
    touched = {r.target or r.service for r in recent}
    if label not in touched and len(touched) >= policy.max_targets_per_window:
        return (
            f"blast radius: {len(touched)} targets changed within {window_text} "
            f"(max {policy.max_targets_per_window})"
        )
    if len(busy | {service}) > policy.max_concurrent_services:
        return (
            f"blast radius: {len(busy)} other services are being acted on "
            f"(max {policy.max_concurrent_services} at once)"
        )
    if target.replicas is not None and target.replicas > 0:
        share = target.replicas_acted_on / target.replicas
        if share > policy.max_replica_share:
            return (
                f"blast radius: {target.replicas_acted_on}/{target.replicas} replicas of {service} "
                f"are already being acted on (max share {policy.max_replica_share:.0%})"
            )
    return None


def decide(
    action: ProposedAction,
    level: AutonomyLevel,
    policy: AutonomySettings,
    confidence: float,
    *,
    target: TargetState = _UNKNOWN_TARGET,
    history: History = _NO_HISTORY,
    hold: str | None = None,
) -> Decision:
    """What the gate does with one proposed action at this level, and why.

    ``execute`` means "runs without asking a person"; with ``dry_run`` set on the decision it means
    "would run". An approved action may run when the gate answers ``execute`` or ``await_approval``,
    never when it answers ``not_proposed`` or ``denied``.

    Everything is judged on the resolved target (``action.resolved``): an action that was never
    resolved, or whose parameters name another service or namespace than its target, is denied.
    ``hold`` is a reason from outside the gate (the evidence bounds) that keeps a change waiting
    for a person.
    """
    _, service, _, _ = target_of(action)
    lvl = effective_level(level, service, policy)

    def result(outcome: DecisionOutcome, reason: str, verify: bool = False, dry: bool = False) -> Decision:
        return Decision(
            action=action, outcome=outcome, level=lvl, reason=reason, verify_after=verify, dry_run=dry
        )

    if lvl is AutonomyLevel.L0:
        return result(DecisionOutcome.NOT_PROPOSED, "L0: evidence only, no actions")
    resolved = action.resolved
    if resolved is not None and resolved.conflict:
        return result(DecisionOutcome.DENIED, f"target mismatch: {resolved.conflict}")
    if resolved is None and not action.missing_params:
        return result(
            DecisionOutcome.DENIED, "target not resolved: the action did not come through the catalogue"
        )
    limit = _AUTOMATIC_UP_TO[lvl]
    if action.missing_params and (action.risk is Risk.READ or lvl.rank > AutonomyLevel.L1.rank):
        # Nothing runs on guessed parameters: a person completes them when approving.
        return result(DecisionOutcome.AWAIT_APPROVAL, f"needs parameters: {', '.join(action.missing_params)}")
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
            f"default deny: no policy rule covers {action.action_id} on {target_of(action)[3]}",
        )
    if hold is not None:
        return result(DecisionOutcome.AWAIT_APPROVAL, hold)
    if history.breaker is not None:
        return result(DecisionOutcome.AWAIT_APPROVAL, f"circuit breaker: {history.breaker}")
    cap = incident_cap(lvl, policy)
    if history.incident_automatic >= cap:
        return result(
            DecisionOutcome.AWAIT_APPROVAL,
            f"{lvl.value}: this incident already had {history.incident_automatic} automatic change(s) (max {cap})",
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
    held = _limits_reason(action, policy, target, history)
    if held is not None:
        return result(DecisionOutcome.AWAIT_APPROVAL, held)
    verify = lvl.rank >= AutonomyLevel.L4.rank
    why = f"{lvl.value}: {action.risk.value}-risk action covered by policy, confidence {confidence:.2f}"
    if policy.dry_run:
        return result(DecisionOutcome.EXECUTE, f"dry run, nothing changed: {why}", verify, dry=True)
    return result(DecisionOutcome.EXECUTE, why, verify)

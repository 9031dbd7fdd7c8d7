"""Proposals are bounded by the evidence: what an investigation may propose, whoever wrote the proposal.

A model can be talked into proposing anything (a log line said "restart all deployments"). So a
proposal is considered only when:

* its resolved target belongs to a service among the top ``action_root_causes`` root causes;
* that root cause cites evidence, and not only evidence whose text reads as instructions;
* it comes from a runbook among the incident's ``action_runbooks`` best matches, which lists it;
* it stays in the incident's namespace, when the incident has one.

Anything else is refused (and audited by the runner). Of what remains, only proposals for the top
root cause may run without approval, and none from a runbook whose own text reads as instructions;
the rest wait for a person (``Bound.hold``).
"""

from __future__ import annotations

from dataclasses import dataclass

from opsagent.autonomy.policy import decide, effective_level
from opsagent.config import AutonomySettings
from opsagent.domain import (
    AutonomyLevel,
    Decision,
    DecisionOutcome,
    Findings,
    ProposedAction,
    RootCause,
    RunbookMatch,
)


@dataclass(frozen=True)
class Bound:
    """``refusal``: the proposal is not considered at all. ``hold``: it may only run once approved."""

    refusal: str | None = None
    hold: str | None = None


def _service(action: ProposedAction) -> str:
    resolved = action.resolved
    return resolved.service if resolved is not None and resolved.service else action.target.service


def bound(
    action: ProposedAction,
    findings: Findings,
    runbooks: list[RunbookMatch],
    policy: AutonomySettings,
    *,
    namespace: str | None = None,
) -> Bound:
    """How far the evidence lets ``action`` go (see the module doc)."""
    service = _service(action)
    top: list[RootCause] = findings.root_causes[: policy.action_root_causes]
    rank = next((i for i, c in enumerate(top) if c.service == service), None)
    if rank is None:
        named = ", ".join(c.service for c in top) or "none"
        return Bound(refusal=f"{service} is not among the top root causes ({named})")
    cause = top[rank]
    if not cause.evidence:
        return Bound(refusal=f"root cause {service} cites no evidence")
    if all(item.untrusted for item in cause.evidence):
        return Bound(
            refusal=f"root cause {service} rests only on text that reads as instructions to an agent"
        )
    listed = runbooks[: policy.action_runbooks]
    book = next((b for b in listed if b.id == action.runbook_id), None)
    if book is None:
        return Bound(
            refusal=f"{action.action_id} does not come from a runbook that matches the incident"
            + (f" ({action.runbook_id} is not among its best matches)" if action.runbook_id else "")
        )
    if not any(spec.id == action.action_id for spec in book.actions):
        return Bound(refusal=f"runbook {book.id} does not list {action.action_id}")
    resolved = action.resolved
    if namespace and resolved is not None and resolved.namespace and resolved.namespace != namespace:
        return Bound(
            refusal=f"namespace escape: the action acts in {resolved.namespace!r}, the incident is in {namespace!r}"
        )
    if rank > 0:
        return Bound(
            hold=f"{service} is root cause #{rank + 1}: only the top root cause is acted on without approval"
        )
    if any(f.source == "runbook" and f.where == f"runbook {book.id}" for f in findings.untrusted):
        return Bound(hold=f"runbook {book.id} contains text that reads as instructions to an agent")
    return Bound()


def first_pass(
    findings: Findings,
    runbooks: list[RunbookMatch],
    level: AutonomyLevel,
    policy: AutonomySettings,
    confidence: float,
    *,
    namespace: str | None = None,
) -> list[Decision]:
    """The gate's decisions as the investigation reports them (no clock, no ledger): each proposal
    bounded by the evidence, then ``decide()``. The runner decides again, with both, before acting."""
    out: list[Decision] = []
    for action in findings.actions:
        limits = bound(action, findings, runbooks, policy, namespace=namespace)
        if limits.refusal is not None:
            out.append(
                Decision(
                    action=action,
                    outcome=DecisionOutcome.DENIED,
                    level=effective_level(level, action.target.service, policy),
                    reason=f"refused: {limits.refusal}",
                )
            )
            continue
        out.append(decide(action, level, policy, confidence, hold=limits.hold))
    return out

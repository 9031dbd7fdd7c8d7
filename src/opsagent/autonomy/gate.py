"""The gate: ``decide()`` over the ledger of recent actions, the incident's automatic changes so far and
the circuit breaker, read inside the ledger's atomic step (``ActionStore.atomic``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from opsagent.autonomy import breaker
from opsagent.autonomy.approvals import Ledger, automatic_changes, history_from
from opsagent.autonomy.policy import TargetState, decide, policy_version
from opsagent.config import AutonomySettings
from opsagent.domain import AutonomyLevel, Decision, ProposedAction


def gate(
    ledger: Ledger,
    action: ProposedAction,
    confidence: float,
    level: AutonomyLevel,
    policy: AutonomySettings,
    target: TargetState,
    now: datetime,
    *,
    incident_id: str | None = None,
    hold: str | None = None,
) -> tuple[Decision, str]:
    """``decide()`` on the ledger as it is inside the caller's atomic step, at ``now``.

    With ``incident_id`` (a new proposal, not a person's approval) the incident's automatic
    changes so far and the circuit breaker count too.
    """
    window = max(policy.rate_window_seconds, policy.breaker_window_seconds)
    done, tripped = 0, None
    if incident_id is not None:
        done = automatic_changes(ledger.find(incident_id=incident_id))
        tripped = breaker.reason(ledger, incident_id, now, policy)
    history = history_from(
        ledger,
        now,
        window if incident_id else policy.rate_window_seconds,
        incident_automatic=done,
        breaker=tripped,
    )
    if incident_id is not None:
        # The rate limits and blast radius count only their own window.
        since = now - timedelta(seconds=policy.rate_window_seconds)
        history = history.model_copy(
            update={
                "actions": tuple(r for r in history.actions if r.started_at >= since or r.finished_at is None)
            }
        )
    decision = decide(action, level, policy, confidence, history=history, target=target, hold=hold)
    return decision, policy_version(policy)

"""An action request's state and the reasoner, in the words a report shows."""

from __future__ import annotations

from opsagent.autonomy.approvals import ActionRequest, ActionStatus
from opsagent.domain import DecisionOutcome, ReasonerTrace

# What the gate's decision was, as seen from where the request ended up.
_WAITED = {
    ActionStatus.PENDING,
    ActionStatus.APPROVED,
    ActionStatus.REJECTED,
    ActionStatus.EXPIRED,
    ActionStatus.BLOCKED,
}
_STATUS_LABEL = {
    ActionStatus.PENDING: "awaits approval",
    ActionStatus.APPROVED: "approved, not run yet",
    ActionStatus.REJECTED: "rejected",
    ActionStatus.EXPIRED: "expired unapproved",
    ActionStatus.NOT_PROPOSED: "not proposed at this level",
    ActionStatus.DENIED: "denied",
    ActionStatus.BLOCKED: "approved, blocked at run time",
    ActionStatus.DRY_RUN: "dry run, nothing changed",
    ActionStatus.RUNNING: "running",
    ActionStatus.VERIFYING: "running, being verified",
    ActionStatus.SUCCEEDED: "succeeded",
    ActionStatus.FAILED: "failed",
    ActionStatus.ROLLED_BACK: "failed verification, rolled back",
}


def outcome(req: ActionRequest) -> DecisionOutcome:
    """The gate's decision on a request, read back from its status."""
    if req.status is ActionStatus.NOT_PROPOSED:
        return DecisionOutcome.NOT_PROPOSED
    if req.status is ActionStatus.DENIED:
        return DecisionOutcome.DENIED
    if req.status in _WAITED or not req.automatic:
        return DecisionOutcome.AWAIT_APPROVAL
    return DecisionOutcome.EXECUTE


def status_label(req: ActionRequest) -> str:
    """The request's state in words, with who approved or rejected it."""
    label = _STATUS_LABEL[req.status]
    who = req.decided_by or "a person"
    if req.status in (
        ActionStatus.RUNNING,
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.ROLLED_BACK,
    ):
        label += " (automatic)" if req.automatic else f" (approved by {who})"
    elif req.status is ActionStatus.REJECTED:
        label += f" by {who}"
    elif req.status in (ActionStatus.APPROVED, ActionStatus.BLOCKED):
        label += f" (approved by {who})"
    return label


def reasoner_detail(trace: ReasonerTrace, findings_reasoner: str) -> str:
    """Which reasoner produced the findings, in words: "llm (model m)", "llm (fell back to offline: why)"."""
    if trace.fell_back:
        why = trace.fallback_reason or "see the notes"
        return f"{trace.reasoner} (fell back to {findings_reasoner}: {why})"
    if trace.reasoner == "llm" and trace.model:
        return f"llm (model {trace.model})"
    return findings_reasoner

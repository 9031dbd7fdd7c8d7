"""Running a request a person approved: the catalogue and today's policy are asked again first.

Approval is consent, not a bypass of a lowered level: the level, policy and kill switch of *this*
moment decide, and an action they no longer allow is blocked and audited. The re-check and the move
to ``running`` are one ``ActionStore.atomic()`` step, so a request approved twice, or run from two
places at once, runs once, and it counts against the limits like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsagent.autonomy.approvals import ActionRequest, ActionStatus, ActionStore, Ledger
from opsagent.autonomy.audit import AuditLog
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.execution import Execution
from opsagent.autonomy.gate import gate
from opsagent.autonomy.policy import TargetState
from opsagent.autonomy.request_audit import RequestAudit
from opsagent.config import AutonomySettings
from opsagent.domain import AutonomyLevel, Decision, DecisionOutcome, ProposedAction
from opsagent.errors import ActionValidationError, ConflictError


@dataclass(frozen=True)
class ApprovedRun:
    """The runner's approval path. ``level`` and ``policy`` are read when a request runs: whoever
    reloads configuration replaces them on the runner, and the runner's values count."""

    catalog: ActionCatalog
    store: ActionStore
    audit: AuditLog
    record: RequestAudit
    execution: Execution
    clock: Callable[[], datetime]
    level: Callable[[], AutonomyLevel]
    policy: Callable[[], AutonomySettings]
    target_state: Callable[[ProposedAction], TargetState]

    def run(self, request_id: str, actor: str) -> ActionRequest:
        """Run an approved request after checking it again against the catalogue and today's policy."""
        req = self.store.get(request_id)
        _must_be_approved(req)
        try:
            action = self.catalog.recheck(req.action)
        except ActionValidationError as exc:
            return self._block(req, f"no longer valid: {exc}")
        policy = self.policy()
        target = self.target_state(action)
        with self.store.atomic(self.audit) as ledger:
            req = ledger.get(request_id)
            _must_be_approved(req)
            decision, version = gate(
                ledger, action, req.confidence, self.level(), policy, target, self.clock()
            )
            if decision.outcome in (DecisionOutcome.NOT_PROPOSED, DecisionOutcome.DENIED):
                self._block_in(
                    ledger, req, f"blocked at execution time: {decision.reason}", decision, version
                )
                return req
            if decision.dry_run or policy.dry_run:
                req.status, req.finished_at = ActionStatus.DRY_RUN, self.clock()
                ledger.audit(
                    self.record.entry(
                        "decision",
                        req,
                        f"dry run, approved but not run: {decision.reason}",
                        actor=actor,
                        version=version,
                    )
                )
                ledger.save(req)
                return req
            req.status = ActionStatus.RUNNING
            req.started_at = self.clock()
            ledger.save(req)
        # Approved actions are verified like automatic ones wherever the level verifies.
        decision = decision.model_copy(update={"verify_after": decision.level.rank >= AutonomyLevel.L4.rank})
        return self.execution.execute(req, decision, version, actor=actor)

    def _block(self, req: ActionRequest, reason: str) -> ActionRequest:
        with self.store.atomic(self.audit) as ledger:
            current = ledger.get(req.id)
            _must_be_approved(current)
            self._block_in(ledger, current, reason, None, None)
        return current

    def _block_in(
        self,
        ledger: Ledger,
        req: ActionRequest,
        reason: str,
        decision: Decision | None,
        version: str | None,
    ) -> None:
        req.status, req.finished_at, req.result = ActionStatus.BLOCKED, self.clock(), reason
        ledger.audit(
            self.record.entry(
                "blocked",
                req,
                reason,
                level=decision.level.value if decision else None,
                version=version,
                outcome=decision.outcome.value if decision else ActionStatus.BLOCKED.value,
            )
        )
        ledger.save(req)


def _must_be_approved(req: ActionRequest) -> None:
    if req.status is not ActionStatus.APPROVED:
        raise ConflictError(f"action request {req.id} is {req.status.value}, not approved")

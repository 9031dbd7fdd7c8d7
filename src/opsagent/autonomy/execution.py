"""Running a decided action: audit, execute, verify, roll back, escalate.

``execution_started`` is written before the executor is called (no audit line, no action); at L4/L5
the action is verified afterwards and, when the check fails, rolled back with its catalogued
rollback on the same target and escalated.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from opsagent.autonomy.approvals import ActionRequest, ActionStatus, ActionStore
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.escalation import Escalation
from opsagent.autonomy.executors import ExecutionResult, Executors
from opsagent.autonomy.request_audit import RequestAudit
from opsagent.autonomy.verify import Verifier, VerifyResult
from opsagent.config import AutonomySettings
from opsagent.domain import ActionSpec, AutonomyLevel, Decision, ProposedAction
from opsagent.errors import ActionValidationError, ExecutorError, OpsAgentError, StoreError


class Execution:
    """Runs decided requests with ``executors``; ``current_policy`` is read when it matters (the
    kill switch before a rollback)."""

    def __init__(
        self,
        *,
        catalog: ActionCatalog,
        executors: Executors,
        store: ActionStore,
        verifier: Verifier | None,
        record: RequestAudit,
        escalation: Escalation,
        clock: Callable[[], datetime],
        current_policy: Callable[[], AutonomySettings],
    ) -> None:
        self.catalog = catalog
        self._executors = executors
        self._store = store
        self._verifier = verifier
        self._record = record
        self._escalation = escalation
        self._clock = clock
        self._current_policy = current_policy

    def execute(self, req: ActionRequest, decision: Decision, version: str, *, actor: str) -> ActionRequest:
        spec = self.catalog.get(req.action.action_id)
        req.status, req.started_at = ActionStatus.RUNNING, self._clock()
        try:
            self._record.write(
                "execution_started",
                req,
                f"running {spec.id} via {spec.executor}",
                actor=actor,
                level=decision.level.value,
                version=version,
                detail={"params": req.action.params, "executor": spec.executor},
            )
        except StoreError as exc:
            # No audit line, no action (and, not having run, it uses up no rate limit).
            req.status, req.finished_at, req.result = ActionStatus.FAILED, self._clock(), f"not run: {exc}"
            req.started_at = None
            self._store.save(req)
            return req
        self._store.save(req)
        result = self._run(spec, req.action, req.id)
        self._record.write(
            "execution_result",
            req,
            result.summary,
            actor=actor,
            level=decision.level.value,
            version=version,
            outcome="ok" if result.ok else "failed",
            detail={"output": result.output, **result.detail},
        )
        req.result = result.summary
        if not result.ok:
            req.status, req.finished_at = ActionStatus.FAILED, self._clock()
            self._store.save(req)
            if decision.level.rank >= AutonomyLevel.L3.rank:
                self._escalation.escalate(req, f"{spec.id} failed: {result.summary}")
            else:
                # Below L3 nobody is paged, but a failed action is always told (issue 21).
                self._escalation.notify(
                    "action_failed",
                    "page",
                    req.incident_id,
                    f"opsagent: {spec.id} on {req.action.target.service} failed",
                    f"{spec.id} failed: {result.summary}",
                    [req],
                )
            return req
        if decision.verify_after and spec.verify is not None and self._verifier is not None:
            req.status = ActionStatus.VERIFYING
            self._store.save(req)
            return self._verify(req, spec, decision, version)
        req.status, req.finished_at = ActionStatus.SUCCEEDED, self._clock()
        self._store.save(req)
        return req

    def _run(self, spec: ActionSpec, action: ProposedAction, request_id: str) -> ExecutionResult:
        try:
            return self._executors.for_spec(spec).run(spec, action, request_id=request_id)
        except ExecutorError as exc:
            return ExecutionResult(ok=False, summary=str(exc))
        except OpsAgentError as exc:  # pragma: no cover - executors raise ExecutorError; belt and braces
            return ExecutionResult(ok=False, summary=f"{type(exc).__name__}: {exc}")

    def _verify(
        self, req: ActionRequest, spec: ActionSpec, decision: Decision, version: str
    ) -> ActionRequest:
        assert self._verifier is not None and spec.verify is not None
        outcome: VerifyResult = self._verifier.verify(spec.verify, req.action)
        self._record.write(
            "verification",
            req,
            outcome.reason,
            level=decision.level.value,
            version=version,
            outcome=outcome.status,
            detail={
                "query": outcome.query,
                "attempts": outcome.attempts,
                "seconds": round(outcome.seconds, 3),
            },
        )
        if outcome.status == "passed":
            req.status, req.finished_at = ActionStatus.SUCCEEDED, self._clock()
            self._store.save(req)
            return req
        req.status, req.finished_at = ActionStatus.FAILED, self._clock()
        req.result = f"{req.result}; verification {outcome.status}: {outcome.reason}"
        rolled = "no rollback declared"
        if outcome.status == "failed" and spec.rollback:
            rolled = self._rollback(req, spec.rollback, version, decision)
        elif spec.rollback:
            rolled = "not rolled back: the check could not be evaluated"
        self._store.save(req)
        self._escalation.escalate(
            req,
            f"verification of {spec.id} {outcome.status}: {outcome.reason}; {rolled}",
            kind="verification_failed",
        )
        return req

    def _rollback(self, req: ActionRequest, rollback_id: str, version: str, decision: Decision) -> str:
        """Run the catalogued rollback on the same target; its parameters come from the original's.

        Returns what happened, in words, for the escalation.
        """
        if self._current_policy().kill_switch:
            self._record.write(
                "rollback", req, "rollback skipped: kill switch on", outcome="skipped", version=version
            )
            return "rollback skipped: kill switch on"
        try:
            defaults = self.catalog.default_params(rollback_id, req.action.target)
            spec = self.catalog.get(rollback_id)
            props = spec.params.get("properties")
            shared = {k: v for k, v in req.action.params.items() if isinstance(props, dict) and k in props}
            action = self.catalog.propose(
                rollback_id,
                req.action.target,
                {**defaults, **shared},
                reason=f"rollback of {req.action.action_id} ({req.id})",
                runbook_id=req.action.runbook_id,
            )
        except ActionValidationError as exc:
            self._record.write(
                "rollback", req, f"rollback not possible: {exc}", outcome="failed", version=version
            )
            return f"rollback not possible: {exc}"
        self._record.write(
            "rollback",
            req,
            f"rolling back with {rollback_id}",
            outcome="started",
            version=version,
            level=decision.level.value,
            detail={"params": action.params},
        )
        result = self._run(spec, action, f"{req.id}-rollback")
        self._record.write(
            "rollback",
            req,
            result.summary,
            outcome="ok" if result.ok else "failed",
            version=version,
            level=decision.level.value,
            detail={"output": result.output},
        )
        if result.ok:
            req.status = ActionStatus.ROLLED_BACK
            return f"rolled back with {rollback_id}"
        return f"ROLLBACK FAILED ({rollback_id}: {result.summary})"

"""``ActionRunner``: turns an investigation's proposed actions into runs, approval requests and audit lines.

For each proposal, in order: validate it against the catalogue (unknown actions and parameters outside
the schema are denied — whoever proposed them, an LLM or a log line); read the kill switch and the
ledger of recent actions; ask ``decide()``; write the decision to the audit log; then run it, queue it
for approval, or leave it. A run writes ``execution_started`` to the audit log before the executor is
called, and at L4/L5 is verified afterwards, rolled back and escalated when verification fails.

An approved request runs through ``run_approved()``, which asks ``decide()`` again with the level,
policy and kill switch of *that* moment: approval is consent, not a bypass of a lowered level.

"Read the ledger → decide → record the action" is one ``ActionStore.atomic()`` step (a PostgreSQL
advisory lock or SQLite's write lock, held for milliseconds): with several API threads and workers on
several machines, N+1 simultaneous proposals under a limit of N still leave exactly one waiting. The
slow parts (asking the cluster how busy the target is, running the action, verifying it) stay outside.

Failures (an automatic action, a verification, a rollback) are escalated: audited, logged and sent to
the notifiers as pages; actions left waiting for approval are sent as information.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

from pydantic import JsonValue

from opsagent.autonomy.approvals import ActionRequest, ActionStatus, ActionStore
from opsagent.autonomy.approved_run import ApprovedRun
from opsagent.autonomy.audit import SYSTEM_ACTOR, AuditLog
from opsagent.autonomy.bounds import Bound, bound
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.escalation import Escalation, Escalator, LogEscalator
from opsagent.autonomy.execution import Execution
from opsagent.autonomy.executors import Executors
from opsagent.autonomy.gate import gate
from opsagent.autonomy.killswitch import KillSwitch
from opsagent.autonomy.notify import Notifiers
from opsagent.autonomy.policy import TargetState, policy_version
from opsagent.autonomy.request_audit import RequestAudit
from opsagent.autonomy.verify import Verifier
from opsagent.config import AutonomySettings
from opsagent.domain import (
    ActionTarget,
    AutonomyLevel,
    DecisionOutcome,
    Investigation,
    ProposedAction,
    Risk,
)
from opsagent.errors import ActionValidationError

log = logging.getLogger(__name__)


class RequestTimes(TypedDict, total=False):
    """How a new request stands besides its status: whether it runs on its own, and its times."""

    automatic: bool
    expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunnerParts:
    """What an ``ActionRunner`` works with, assembled in one place (``factory.build_action_runner``).

    ``level`` and ``policy`` are read on every decision: whoever reloads configuration may replace
    them on the runner.
    """

    level: AutonomyLevel
    policy: AutonomySettings
    catalog: ActionCatalog
    executors: Executors
    store: ActionStore
    audit: AuditLog
    kill_switch: KillSwitch
    verifier: Verifier | None = None
    escalator: Escalator = field(default_factory=LogEscalator)
    notifiers: Notifiers = field(default_factory=Notifiers)
    clock: Callable[[], datetime] = _utcnow


class ActionRunner:
    def __init__(self, parts: RunnerParts) -> None:
        self.level = parts.level
        self.policy = parts.policy
        self.catalog = parts.catalog
        self._executors = parts.executors
        self._store = parts.store
        self._audit = parts.audit
        self._kill = parts.kill_switch
        self._verifier = parts.verifier
        self._clock = parts.clock
        self._record = RequestAudit(parts.audit, parts.clock)
        self._escalation = Escalation(
            self._record, parts.store, parts.escalator, parts.notifiers, parts.clock
        )
        self._execution = Execution(
            catalog=parts.catalog,
            executors=parts.executors,
            store=parts.store,
            verifier=parts.verifier,
            record=self._record,
            escalation=self._escalation,
            clock=parts.clock,
            current_policy=self.current_policy,
        )
        self._approved = ApprovedRun(
            catalog=parts.catalog,
            store=parts.store,
            audit=parts.audit,
            record=self._record,
            execution=self._execution,
            clock=parts.clock,
            level=lambda: self.level,
            policy=self.current_policy,
            target_state=self._target_state,
        )

    @property
    def store(self) -> ActionStore:
        return self._store

    @property
    def audit(self) -> AuditLog:
        return self._audit

    # ------------------------------------------------------------------------------------ policy

    def current_policy(self) -> AutonomySettings:
        """The configured policy with the shared kill switch folded in."""
        if self._kill.state().on and not self.policy.kill_switch:
            return self.policy.model_copy(update={"kill_switch": True})
        return self.policy

    def _target_state(self, action: ProposedAction) -> TargetState:
        # Only changing actions that can run need the target's state; the rest skip the cluster.
        if action.risk is Risk.READ or action.missing_params:
            return TargetState()
        return self._executors.inspector.target_state(action.target)

    # ---------------------------------------------------------------------------------- proposals

    def process(self, investigation: Investigation) -> list[ActionRequest]:
        """Handle every action the investigation proposes. Returns the requests it created.

        Each proposal is first bounded by the evidence (``autonomy.bounds``): one the evidence does not
        support is refused and audited, whoever made it. The top root cause's proposals go first, so
        the incident's one automatic change (at L3) is spent on it. Actions left waiting for approval
        are announced in one notification for the incident.
        """
        findings = investigation.findings
        incident = investigation.incident
        confidence = findings.root_causes[0].confidence if findings.root_causes else 0.0
        order = {c.service: i for i, c in reversed(list(enumerate(findings.root_causes)))}

        def rank(action: ProposedAction) -> int:
            # Before resolution a claimed service orders it; the bounds then judge the resolved one.
            resolved = action.resolved
            service = resolved.service if resolved is not None and resolved.service else action.target.service
            return order.get(service, len(order))

        requests: list[ActionRequest] = []
        for proposed in sorted(findings.actions, key=rank):
            try:
                # Resolved through the catalogue first, so the bounds judge the real target.
                action = self.catalog.recheck(proposed, allow_missing=bool(proposed.missing_params))
            except ActionValidationError:
                action = proposed  # handle() denies it with the reason
            limits = bound(
                action, findings, investigation.runbooks, self.policy, namespace=incident.namespace
            )
            if action.resolved is not None and action.resolved.conflict:
                # A target mismatch is refused by the gate and audited as one, whatever else is wrong.
                limits = Bound()
            if limits.refusal is not None:
                requests.append(
                    self._deny(
                        incident.id,
                        action,
                        confidence,
                        f"refused: {limits.refusal}",
                        detail={
                            "source": findings.reasoner,
                            "guard": "evidence_bounds",
                            "params": action.params,
                        },
                    )
                )
                continue
            requests.append(
                self.handle(
                    incident.id, action, confidence, source=findings.reasoner, notify=False, hold=limits.hold
                )
            )
        self._escalation.announce_pending(incident.id, requests)
        return requests

    def handle(
        self,
        incident_id: str,
        action: ProposedAction,
        confidence: float,
        *,
        source: str = "engine",
        notify: bool = True,
        hold: str | None = None,
    ) -> ActionRequest:
        """Validate, decide, audit, and run or queue one proposed action.

        ``hold`` (from the evidence bounds) keeps a change waiting for approval.
        """
        try:
            # The catalogue sets the risk: a proposal cannot talk its way down to "read". Only a
            # proposal that says which required parameters it lacks may lack them (it cannot run).
            action = self.catalog.recheck(action, allow_missing=bool(action.missing_params))
        except ActionValidationError as exc:
            return self._deny(incident_id, action, confidence, f"rejected proposal from {source}: {exc}")
        spec = self.catalog.get(action.action_id)
        # Outside the atomic step: the kill switch (its own read) and the cluster (a network call).
        policy = self.current_policy()
        target = self._target_state(action)
        with self._store.atomic(self._audit) as ledger:
            now = self._clock()
            decision, version = gate(
                ledger,
                action,
                confidence,
                self.level,
                policy,
                target,
                self._clock(),
                incident_id=incident_id,
                hold=hold,
            )
            if (
                decision.verify_after
                and not decision.dry_run
                and spec.verify is not None
                and self._verifier is None
            ):
                # L4/L5 promise a check afterwards; without Prometheus that promise cannot be kept.
                decision = decision.model_copy(
                    update={
                        "outcome": DecisionOutcome.AWAIT_APPROVAL,
                        "verify_after": False,
                        "reason": f"{decision.reason}; no Prometheus to verify it, so it needs approval",
                    }
                )
            status = {
                DecisionOutcome.EXECUTE: ActionStatus.DRY_RUN if decision.dry_run else ActionStatus.RUNNING,
                DecisionOutcome.AWAIT_APPROVAL: ActionStatus.PENDING,
                DecisionOutcome.NOT_PROPOSED: ActionStatus.NOT_PROPOSED,
                DecisionOutcome.DENIED: ActionStatus.DENIED,
            }[decision.outcome]
            req = self._request(
                incident_id,
                action,
                confidence,
                status,
                decision.reason,
                now,
                automatic=decision.outcome is DecisionOutcome.EXECUTE,
                expires_at=(
                    now + timedelta(seconds=policy.approval_ttl_seconds)
                    if status is ActionStatus.PENDING
                    else None
                ),
                # A running request counts against the limits from the moment it is recorded.
                started_at=now if status is ActionStatus.RUNNING else None,
            )
            # The decision is on record before anything else happens to the request, and in the
            # same transaction as the request itself.
            ledger.audit(
                self._record.entry(
                    "decision",
                    req,
                    decision.reason,
                    level=decision.level.value,
                    version=version,
                    outcome=decision.outcome.value,
                    detail={
                        "dry_run": decision.dry_run,
                        "source": source,
                        "params": action.params,
                        **({"missing_params": list(action.missing_params)} if action.missing_params else {}),
                    },
                )
            )
            ledger.add(req)
        if status is ActionStatus.RUNNING:
            return self._execution.execute(req, decision, version, actor=SYSTEM_ACTOR)
        if notify:
            self._escalation.announce_pending(incident_id, [req])
        return req

    def _request(
        self,
        incident_id: str,
        action: ProposedAction,
        confidence: float,
        status: ActionStatus,
        reason: str,
        created_at: datetime,
        **when: Unpack[RequestTimes],
    ) -> ActionRequest:
        """A new request for ``action`` at the runner's level, under a fresh id."""
        return ActionRequest(
            id=uuid.uuid4().hex[:12],
            incident_id=incident_id,
            action=action,
            confidence=confidence,
            level=self.level,
            status=status,
            reason=reason,
            created_at=created_at,
            **when,
        )

    def _deny(
        self,
        incident_id: str,
        action: ProposedAction,
        confidence: float,
        reason: str,
        *,
        detail: dict[str, JsonValue] | None = None,
    ) -> ActionRequest:
        req = self._request(
            incident_id,
            action,
            confidence,
            ActionStatus.DENIED,
            reason,
            self._clock(),
            finished_at=self._clock(),
        )
        self._record.write(
            "decision",
            req,
            reason,
            version=policy_version(self.policy),
            outcome=DecisionOutcome.DENIED.value,
            detail=detail,
        )
        self._store.add(req)
        return req

    # ---------------------------------------------------------------------------------- approvals

    def run_approved(self, request_id: str, actor: str) -> ActionRequest:
        """Run an approved request after checking it again against the catalogue and today's policy
        (``autonomy.approved_run``)."""
        return self._approved.run(request_id, actor)


def proposal(
    action_id: str,
    service: str,
    params: dict[str, JsonValue] | None = None,
    *,
    namespace: str | None = None,
    reason: str = "",
    runbook_id: str | None = None,
) -> ProposedAction:
    """A raw, unvalidated proposal (as an LLM or a person would make it); the runner validates it."""
    return ProposedAction(
        action_id=action_id,
        risk=Risk.HIGH,
        target=ActionTarget(service=service, namespace=namespace),
        params=params or {},
        reason=reason,
        runbook_id=runbook_id,
    )

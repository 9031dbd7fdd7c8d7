"""Action requests and approvals: every action the runner handles becomes an ``ActionRequest``.

A request is the ledger line for one proposed action: pending approval (with an expiry), approved or
rejected (with actor, time and reason), running, finished. The same records feed the rate limits and
the blast-radius cap (``history_from()``). Approving only records a person's consent: the runner
re-checks the action against the policy before it runs (``ActionRunner.run_approved``).

Every change of a request's state that depends on what the ledger says (decide on the history and
record the action; approve only what is still pending; expire only what is still pending) happens in
one ``ActionStore.atomic()`` step, which no other thread or process interleaves with: two workers can
never both read "2 of 3 used" and both run the third.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from pydantic import JsonValue

from opsagent.autonomy.audit import AuditLog
from opsagent.autonomy.policy import ActionRecord, History
from opsagent.domain import (
    SYSTEM_ACTOR,
    ActionRequest,
    ActionStatus,
    AuditEntry,
    BreakerReset,
    ProposedAction,
    Risk,
)
from opsagent.errors import ActionValidationError, ConflictError, InputError, OpsAgentError

if TYPE_CHECKING:
    from opsagent.autonomy.catalog import ActionCatalog

__all__ = [
    "IN_FLIGHT",
    "STARTED",
    "ActionRequest",
    "ActionStatus",
    "ActionStore",
    "Approvals",
    "ExpirySweeper",
    "Ledger",
    "automatic_changes",
    "history_from",
]

log = logging.getLogger(__name__)


# Statuses in which the action is changing the target (blast radius counts them as in flight).
IN_FLIGHT = frozenset({ActionStatus.RUNNING, ActionStatus.VERIFYING})
STARTED = frozenset(
    {
        ActionStatus.RUNNING,
        ActionStatus.VERIFYING,
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.ROLLED_BACK,
    }
)


class Ledger(Protocol):
    """The ledger inside one atomic step: what it reads is what no one else changes until it ends."""

    def get(self, request_id: str) -> ActionRequest:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def add(self, request: ActionRequest) -> None: ...

    def save(self, request: ActionRequest) -> None: ...

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]: ...

    def started_since(self, since: datetime) -> list[ActionRequest]: ...

    def resets(self) -> list[BreakerReset]:
        """Every circuit-breaker reset a person made, oldest first."""
        ...

    def add_reset(self, reset: BreakerReset) -> None: ...

    def audit(self, entry: AuditEntry) -> AuditEntry:
        """Append to the audit log as part of the step (in the same transaction where there is one)."""
        ...


class ActionStore(Protocol):
    def atomic(self, audit: AuditLog) -> AbstractContextManager[Ledger]:
        """One all-or-nothing step on the ledger, serialised against every other process's steps.

        Whatever it writes (requests and audit entries) is stored together or not at all; no other
        ``atomic()`` step, in this process or another, runs between its reads and its writes.
        Don't call the store's other methods from inside it.
        """
        ...

    def add(self, request: ActionRequest) -> None: ...

    def get(self, request_id: str) -> ActionRequest:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def save(self, request: ActionRequest) -> None:
        """Store the request's new state (status, approval, timestamps, result)."""
        ...

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        """Oldest first."""
        ...

    def started_since(self, since: datetime) -> list[ActionRequest]:
        """Requests that started running at or after ``since``, plus any still in flight."""
        ...

    def resets(self) -> list[BreakerReset]: ...


class _Recent(Protocol):
    def started_since(self, since: datetime) -> list[ActionRequest]: ...


def _record(r: ActionRequest, now: datetime) -> ActionRecord:
    resolved = r.action.resolved
    return ActionRecord(
        action_id=r.action.action_id,
        service=(resolved.service or resolved.name) if resolved is not None else r.action.target.service,
        namespace=resolved.namespace if resolved is not None else r.action.target.namespace,
        target=resolved.label if resolved is not None else f"unresolved/{r.action.target.service}",
        incident_id=r.incident_id,
        started_at=r.started_at or now,
        finished_at=None if r.status in IN_FLIGHT else (r.finished_at or now),
        automatic=r.automatic,
    )


def history_from(
    store: _Recent,
    now: datetime,
    window_seconds: float,
    *,
    incident_automatic: int = 0,
    breaker: str | None = None,
) -> History:
    """What ``decide()`` needs to know about recent and running actions (on their resolved targets)."""
    records = [
        _record(r, now)
        for r in store.started_since(now - timedelta(seconds=window_seconds))
        # Read-only diagnostics change nothing: they use up no rate limit and make no target busy.
        if r.status in STARTED and r.action.risk is not Risk.READ
    ]
    return History(now=now, actions=tuple(records), incident_automatic=incident_automatic, breaker=breaker)


def automatic_changes(requests: list[ActionRequest]) -> int:
    """How many of ``requests`` (one incident's) are changes that started without a person's approval."""
    return sum(1 for r in requests if r.automatic and r.status in STARTED and r.action.risk is not Risk.READ)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Approvals:
    """A person's approve / reject of a pending request, audited with actor, time and reason.

    With a ``catalog``, an approval may complete the parameters the proposal could not derive
    (``ProposedAction.missing_params``); the completed parameters are checked against the schema
    before the approval is recorded.
    """

    def __init__(
        self,
        store: ActionStore,
        audit: AuditLog,
        clock: Callable[[], datetime] = _utcnow,
        *,
        catalog: ActionCatalog | None = None,
    ) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self._catalog = catalog

    def pending(self) -> list[ActionRequest]:
        self.expire_due()
        return self._store.find(status=ActionStatus.PENDING)

    def expire_due(self) -> list[ActionRequest]:
        """Mark pending requests past their expiry as expired; an expired request can never run.

        Safe to run from several processes at once (the API, each worker's sweeper): each request
        expires once, and never after someone approved it.
        """
        with self._store.atomic(self._audit) as ledger:
            return self._expire(ledger, self._clock())

    def _expire(self, ledger: Ledger, now: datetime) -> list[ActionRequest]:
        expired: list[ActionRequest] = []
        for req in ledger.find(status=ActionStatus.PENDING):
            if req.expires_at is not None and req.expires_at <= now:
                req.status = ActionStatus.EXPIRED
                req.finished_at = now
                ledger.audit(self._entry(req, "expiry", "approval window ran out", SYSTEM_ACTOR, now))
                ledger.save(req)
                expired.append(req)
        return expired

    def _entry(
        self,
        req: ActionRequest,
        kind: str,
        reason: str,
        actor: str,
        now: datetime,
        detail: dict[str, JsonValue] | None = None,
    ) -> AuditEntry:
        return AuditEntry.model_validate(
            {
                "kind": kind,
                "reason": reason,
                "actor": actor,
                "at": now,
                "incident_id": req.incident_id,
                "request_id": req.id,
                "action_id": req.action.action_id,
                "service": req.action.target.service,
                "namespace": req.action.target.namespace,
                "level": req.level.value,
                "confidence": req.confidence,
                "outcome": req.status.value,
                "detail": detail or {},
            }
        )

    def _complete(self, req: ActionRequest, params: dict[str, JsonValue] | None) -> ProposedAction:
        """The request's action with a person's parameters filled in, checked against the schema."""
        action = req.action
        missing = set(action.missing_params)
        given = dict(params or {})
        if not given and not missing:
            return action
        extra = sorted(set(given) - missing)
        if extra:
            raise InputError(
                f"action request {req.id}: only missing parameters can be given at approval "
                f"({', '.join(sorted(missing)) or 'none missing'}); not {', '.join(extra)}"
            )
        still = sorted(missing - set(given))
        if still:
            raise InputError(
                f"action request {req.id} needs parameters: {', '.join(still)}; approve with params"
            )
        if self._catalog is None:
            raise InputError("completing parameters needs the action catalogue")
        try:
            return self._catalog.propose(
                action.action_id,
                action.target,
                {**action.params, **given},
                reason=action.reason,
                runbook_id=action.runbook_id,
            )
        except ActionValidationError as exc:
            raise InputError(str(exc)) from None

    def _decide(
        self,
        request_id: str,
        actor: str,
        reason: str,
        approve: bool,
        params: dict[str, JsonValue] | None = None,
    ) -> ActionRequest:
        if not actor.strip():
            raise InputError("an approval needs the name of the person giving it")
        with self._store.atomic(self._audit) as ledger:
            now = self._clock()
            self._expire(ledger, now)
            # Refusals are raised after the step, so the expiries it found are kept.
            refusal: OpsAgentError | None = None
            req = ledger.get(request_id)
            detail: dict[str, JsonValue] = {}
            try:
                if req.status is not ActionStatus.PENDING:
                    raise ConflictError(f"action request {request_id} is {req.status.value}, not pending")
                if approve:
                    completed = self._complete(req, params)
                    if completed is not req.action:
                        detail["params"] = dict(params or {})
                        req.action = completed
                elif params:
                    raise InputError("parameters are only given with an approval")
            except OpsAgentError as exc:
                refusal = exc
            if refusal is None:
                self._record(ledger, req, actor, reason, approve, now, detail)
        if refusal is not None:
            raise refusal
        return req

    def _record(
        self,
        ledger: Ledger,
        req: ActionRequest,
        actor: str,
        reason: str,
        approve: bool,
        now: datetime,
        detail: dict[str, JsonValue],
    ) -> None:
        req.status = ActionStatus.APPROVED if approve else ActionStatus.REJECTED
        req.decided_by, req.decided_at, req.decision_note = actor, now, reason
        if not approve:
            req.finished_at = now
        ledger.audit(
            self._entry(
                req,
                "approval" if approve else "rejection",
                reason or "(no reason given)",
                actor,
                now,
                detail,
            )
        )
        ledger.save(req)

    def approve(
        self,
        request_id: str,
        actor: str,
        reason: str = "",
        *,
        params: dict[str, JsonValue] | None = None,
    ) -> ActionRequest:
        """Record consent; ``params`` fills in what the proposal was missing (and only that)."""
        return self._decide(request_id, actor, reason, approve=True, params=params)

    def reject(self, request_id: str, actor: str, reason: str = "") -> ActionRequest:
        return self._decide(request_id, actor, reason, approve=False)


class ExpirySweeper:
    """Expires pending approvals on a timer, so a request past its time is marked even if no one looks.

    Started by the API lifespan and by ``opsagent worker``; several sweepers on one database are
    harmless (``Approvals.expire_due`` is atomic). A failing sweep is logged and retried next time.
    """

    def __init__(self, approvals: Approvals, interval_seconds: float) -> None:
        self._approvals = approvals
        self._interval = max(0.05, interval_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="approval-expiry", daemon=True)

    def start(self) -> ExpirySweeper:
        self._thread.start()
        return self

    def sweep(self) -> list[ActionRequest]:
        try:
            expired = self._approvals.expire_due()
        except OpsAgentError as exc:
            log.warning("approval expiry sweep failed: %s", exc)
            return []
        if expired:
            log.info("expired %d pending action request(s): %s", len(expired), [r.id for r in expired])
        return expired

    def _loop(self) -> None:
        # Sweep first: what expired while no process was running is marked at start-up.
        self.sweep()
        while not self._stop.wait(self._interval):
            self.sweep()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

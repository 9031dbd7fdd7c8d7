"""Telling people: escalations (pages) when an automatic action or its check fails, and notices of
actions waiting for approval. Every delivery is audited; nothing here may fail the caller."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from opsagent.autonomy.approvals import ActionRequest, ActionStatus, ActionStore
from opsagent.autonomy.notify import (
    Delivery,
    Notification,
    NotificationKind,
    NotifiedRequest,
    Notifiers,
    Severity,
)
from opsagent.autonomy.request_audit import RequestAudit
from opsagent.errors import OpsAgentError

log = logging.getLogger(__name__)


class Escalator(Protocol):
    """Pages a person: an automatic action failed, or its verification did."""

    def escalate(self, request: ActionRequest, reason: str) -> None: ...


class LogEscalator:
    """The default until a notifier is wired in: a warning in the log (and the audit entry the runner writes)."""

    def escalate(self, request: ActionRequest, reason: str) -> None:
        log.warning("escalation for incident %s, action %s: %s", request.incident_id, request.id, reason)


class Escalation:
    """Escalates failed requests and announces pending ones, through ``escalator`` and ``notifiers``."""

    def __init__(
        self,
        record: RequestAudit,
        store: ActionStore,
        escalator: Escalator,
        notifiers: Notifiers,
        clock: Callable[[], datetime],
    ) -> None:
        self._record = record
        self._store = store
        self._escalator = escalator
        self._notifiers = notifiers
        self._clock = clock
        # Notifications are sent from a queue (autonomy/notify.py): a delivery that finally fails is
        # audited when it fails, not when it was queued.
        if self._notifiers.on_failure is None:
            self._notifiers.on_failure = self.notification_failed

    def escalate(self, req: ActionRequest, reason: str, *, kind: NotificationKind = "action_failed") -> None:
        self._record.write("escalation", req, reason, outcome="escalated")
        try:
            self._escalator.escalate(req, reason)
        except OpsAgentError as exc:
            log.error("escalation failed for %s: %s", req.id, exc)
        what = f"{req.action.action_id} on {req.action.target.service}"
        self.notify(
            kind,
            "page",
            req.incident_id,
            f"opsagent: {what} failed, a person is needed",
            reason,
            [req],
        )

    def announce_pending(self, incident_id: str, requests: list[ActionRequest]) -> None:
        waiting = [r for r in requests if r.status is ActionStatus.PENDING]
        if not waiting:
            return
        lines = [
            f"- {r.action.action_id} on {r.action.target.service} ({r.action.risk.value}): {r.reason}"
            + (
                f" [approve with params: {', '.join(r.action.missing_params)}]"
                if r.action.missing_params
                else ""
            )
            for r in waiting
        ]
        self.notify(
            "approval_needed",
            "info",
            incident_id,
            f"opsagent: {len(waiting)} action(s) for incident {incident_id} await approval",
            "\n".join(lines),
            waiting,
        )

    def notify(
        self,
        kind: NotificationKind,
        severity: Severity,
        incident_id: str,
        title: str,
        text: str,
        requests: list[ActionRequest],
    ) -> None:
        """Send to the notifiers and audit each delivery; nothing here may fail the caller."""
        if not self._notifiers:
            return
        note = Notification(
            kind=kind,
            severity=severity,
            incident_id=incident_id,
            title=title,
            text=text,
            at=self._clock(),
            requests=[
                NotifiedRequest(
                    id=r.id,
                    action_id=r.action.action_id,
                    service=r.action.target.service,
                    namespace=r.action.target.namespace,
                    status=r.status.value,
                    reason=r.reason,
                    missing_params=list(r.action.missing_params),
                )
                for r in requests
            ],
        )
        for delivery in self._notifiers.send(note):
            state = "queued" if delivery.queued else "sent" if delivery.ok else "failed"
            try:
                self._record.write(
                    "notification",
                    requests[0],
                    f"{kind} to {delivery.notifier}: "
                    + (state if delivery.ok else f"failed: {delivery.error}"),
                    outcome=state,
                    detail={
                        "notifier": delivery.notifier,
                        "severity": severity,
                        "requests": [r.id for r in requests],
                    },
                )
            except OpsAgentError as exc:
                log.warning("could not audit notification for incident %s: %s", incident_id, exc)

    def notification_failed(self, note: Notification, delivery: Delivery) -> None:
        """A queued notification that could not be delivered, retries spent: audited on its request."""
        if not note.requests:
            return
        try:
            req = self._store.get(note.requests[0].id)
            self._record.write(
                "notification",
                req,
                f"{note.kind} to {delivery.notifier}: failed: {delivery.error}",
                outcome="failed",
                detail={
                    "notifier": delivery.notifier,
                    "severity": note.severity,
                    "requests": [r.id for r in note.requests],
                },
            )
        except OpsAgentError as exc:
            log.warning("could not audit a failed notification for incident %s: %s", note.incident_id, exc)

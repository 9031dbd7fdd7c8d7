"""The audit lines of an action request: who, what, the resolved target, level, policy, outcome.

Every line the runner writes about a request goes through ``RequestAudit``, so the audit always
names what is (or would be) touched, with the service the proposal claimed beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypedDict, Unpack

from pydantic import JsonValue

from opsagent.autonomy.approvals import ActionRequest
from opsagent.autonomy.audit import SYSTEM_ACTOR, AuditEntry, AuditKind, AuditLog


class EntryFields(TypedDict, total=False):
    """The optional fields of ``RequestAudit.entry``, for the methods that pass them through."""

    actor: str
    level: str | None
    version: str | None
    outcome: str | None
    detail: dict[str, JsonValue] | None


class RequestAudit:
    """Writes a request's audit lines to ``audit``, stamped by ``clock``."""

    def __init__(self, audit: AuditLog, clock: Callable[[], datetime]) -> None:
        self._audit = audit
        self._clock = clock

    def write(self, kind: AuditKind, req: ActionRequest, reason: str, **fields: Unpack[EntryFields]) -> None:
        self._audit.append(self.entry(kind, req, reason, **fields))

    def entry(
        self,
        kind: AuditKind,
        req: ActionRequest,
        reason: str,
        *,
        actor: str = SYSTEM_ACTOR,
        level: str | None = None,
        version: str | None = None,
        outcome: str | None = None,
        detail: dict[str, JsonValue] | None = None,
    ) -> AuditEntry:
        # The audit names what is (or would be) touched; the service the proposal claimed is kept beside it.
        resolved = req.action.resolved
        facts: dict[str, JsonValue] = {
            "target": resolved.label if resolved is not None else None,
            "proposed_for": req.action.target.service,
        }
        return AuditEntry(
            kind=kind,
            reason=reason,
            actor=actor,
            at=self._clock(),
            incident_id=req.incident_id,
            request_id=req.id,
            action_id=req.action.action_id,
            service=(resolved.service or resolved.name)
            if resolved is not None
            else req.action.target.service,
            namespace=resolved.namespace if resolved is not None else req.action.target.namespace,
            level=level or req.level.value,
            policy_version=version,
            confidence=req.confidence,
            outcome=outcome or req.status.value,
            detail={**facts, **(detail or {})},
        )

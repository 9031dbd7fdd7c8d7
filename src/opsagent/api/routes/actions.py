"""Actions and approvals: list action requests, approve or reject them (responder); the kill switch and
the circuit breaker's reset (admin); the audit log. The actor recorded is always the token's owner.

An approval runs the action in the request (in a worker thread, as every sync route does) only after
the runner has checked it again against the level, policy and kill switch of that moment.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsagent.api.deps import AdminUser, ResponderUser, RuntimeDep, ViewerUser
from opsagent.api.http_errors import error_responses as _err
from opsagent.api.runtime import Runtime
from opsagent.api.schemas import TimelineEntry
from opsagent.autonomy import breaker
from opsagent.autonomy.approvals import ActionRequest, ActionStatus, Approvals
from opsagent.autonomy.audit import AuditEntry, verify_chain
from opsagent.autonomy.breaker import BreakerState
from opsagent.autonomy.killswitch import KillSwitchState, switch
from opsagent.autonomy.runner import ActionRunner
from opsagent.errors import InputError
from opsagent.factory import build_action_runner
from opsagent.store.actions import SqlAuditLog, SqlKillSwitch
from opsagent.store.models import AuditRow

router = APIRouter(tags=["actions"])
_lock = threading.Lock()

RequestId = Annotated[str, Path(min_length=1, max_length=32)]


def action_runner(request: Request, runtime: Runtime) -> ActionRunner:
    """One runner per app, on the app's store and catalogue (built on first use)."""
    with _lock:
        runner: ActionRunner | None = getattr(request.app.state, "action_runner", None)
        if runner is None:
            runner = build_action_runner(runtime.settings, runtime.store, runtime.services.catalog)
            request.app.state.action_runner = runner
        return runner


class Decide(BaseModel):
    reason: str = Field("", max_length=2_000, description="why; recorded in the audit log")
    params: dict[str, JsonValue] | None = Field(
        None,
        description=(
            "approve only: the parameters the proposal could not derive (its `missing_params`); "
            "checked against the action's schema"
        ),
    )


class KillSwitchIn(BaseModel):
    on: bool
    reason: str = Field("", max_length=2_000)


class ActionPage(BaseModel):
    items: list[ActionRequest]


class BreakerResetIn(BaseModel):
    incident_id: str | None = Field(None, max_length=64, description="only this incident; omit for all")
    reason: str = Field("", max_length=2_000, description="why; recorded in the audit log")


class AuditIntegrity(BaseModel):
    intact: bool
    entries: int


@router.get("/actions", response_model=ActionPage, summary="Action requests", responses=_err(401, 403, 422))
def list_actions(
    request: Request,
    runtime: RuntimeDep,
    user: ViewerUser,
    status: ActionStatus | None = None,
    incident_id: Annotated[str | None, Query(max_length=64)] = None,
) -> ActionPage:
    runner = action_runner(request, runtime)
    Approvals(runner.store, runner.audit).expire_due()
    return ActionPage(items=runner.store.find(status=status, incident_id=incident_id))


@router.get(
    "/actions/{request_id}",
    response_model=ActionRequest,
    summary="One action request",
    responses=_err(401, 403, 404),
)
def get_action(
    request_id: RequestId, request: Request, runtime: RuntimeDep, user: ViewerUser
) -> ActionRequest:
    return action_runner(request, runtime).store.get(request_id)


@router.post(
    "/actions/{request_id}/approve",
    response_model=ActionRequest,
    summary="Approve a pending action; it runs if the policy still allows it",
    responses=_err(401, 403, 404, 409),
)
def approve_action(
    request_id: RequestId, body: Decide, request: Request, runtime: RuntimeDep, user: ResponderUser
) -> ActionRequest:
    runner = action_runner(request, runtime)
    Approvals(runner.store, runner.audit, catalog=runner.catalog).approve(
        request_id, user.name, body.reason, params=body.params
    )
    return runner.run_approved(request_id, user.name)


@router.post(
    "/actions/{request_id}/reject",
    response_model=ActionRequest,
    summary="Reject a pending action",
    responses=_err(401, 403, 404, 409),
)
def reject_action(
    request_id: RequestId, body: Decide, request: Request, runtime: RuntimeDep, user: ResponderUser
) -> ActionRequest:
    runner = action_runner(request, runtime)
    if body.params:
        raise InputError("parameters are only given with an approval")
    return Approvals(runner.store, runner.audit).reject(request_id, user.name, body.reason)


@router.get(
    "/killswitch", response_model=KillSwitchState, summary="The kill switch", responses=_err(401, 403)
)
def get_kill_switch(runtime: RuntimeDep, user: ViewerUser) -> KillSwitchState:
    state = SqlKillSwitch(runtime.store).state()
    if runtime.settings.autonomy.kill_switch and not state.on:
        return KillSwitchState(on=True, actor="configuration", reason="OPSAGENT_AUTONOMY__KILL_SWITCH")
    return state


@router.put(
    "/killswitch",
    response_model=KillSwitchState,
    summary="Turn the kill switch on (every service drops to L1) or off",
    responses=_err(401, 403, 422),
)
def set_kill_switch(body: KillSwitchIn, runtime: RuntimeDep, user: AdminUser) -> KillSwitchState:
    return switch(
        SqlKillSwitch(runtime.store),
        SqlAuditLog(runtime.store),
        on=body.on,
        actor=user.name,
        reason=body.reason,
    )


@router.get(
    "/audit", response_model=list[AuditEntry], summary="The autonomy audit log", responses=_err(401, 403, 422)
)
def get_audit(
    runtime: RuntimeDep,
    user: ViewerUser,
    incident_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 200,
) -> list[AuditEntry]:
    return SqlAuditLog(runtime.store).entries(incident_id=incident_id, limit=limit)


@router.get(
    "/audit/verify",
    response_model=AuditIntegrity,
    summary="Whether the audit log's hash chain is intact",
    responses=_err(401, 403),
)
def verify_audit(runtime: RuntimeDep, user: ViewerUser) -> AuditIntegrity:
    entries = SqlAuditLog(runtime.store).entries()
    return AuditIntegrity(intact=verify_chain(entries), entries=len(entries))


@router.get(
    "/breaker",
    response_model=BreakerState,
    summary="The circuit breaker: open globally, and for which incidents",
    responses=_err(401, 403),
)
def get_breaker(request: Request, runtime: RuntimeDep, user: ViewerUser) -> BreakerState:
    runner = action_runner(request, runtime)
    with runner.store.atomic(runner.audit) as ledger:
        return breaker.state(ledger, datetime.now(UTC), runner.policy)


@router.post(
    "/breaker/reset",
    response_model=BreakerState,
    summary="Re-arm automatic actions after failures: for one incident, or everywhere",
    responses=_err(401, 403, 422),
)
def reset_breaker(
    body: BreakerResetIn, request: Request, runtime: RuntimeDep, user: AdminUser
) -> BreakerState:
    runner = action_runner(request, runtime)
    breaker.reset(
        runner.store, runner.audit, actor=user.name, reason=body.reason, incident_id=body.incident_id
    )
    with runner.store.atomic(runner.audit) as ledger:
        return breaker.state(ledger, datetime.now(UTC), runner.policy)


def incident_audit(session: Session, incident_id: str) -> list[TimelineEntry]:
    """The autonomy audit entries of one incident, in the shape of the incident detail's audit trail."""
    rows = session.scalars(select(AuditRow).where(AuditRow.incident_id == incident_id).order_by(AuditRow.seq))
    out: list[TimelineEntry] = []
    for row in rows:
        what = f"{row.action_id} on {row.service}" if row.action_id else ""
        facts = ", ".join(
            part
            for part in (
                f"level {row.level}" if row.level else "",
                f"policy {row.policy_version}" if row.policy_version else "",
                f"confidence {row.confidence:.2f}" if row.confidence is not None else "",
                f"request {row.request_id}" if row.request_id else "",
            )
            if part
        )
        out.append(
            TimelineEntry(
                at=row.at,
                actor=row.actor,
                event=f"action_{row.kind}" + (f":{row.outcome}" if row.outcome else ""),
                detail=f"{what}: {row.reason} ({facts})" if what else f"{row.reason} ({facts})",
            )
        )
    return out


def audit_markdown(session: Session, incident_id: str) -> str:
    """The incident's autonomy audit trail as a Markdown section for the report ("" when empty)."""
    entries = incident_audit(session, incident_id)
    if not entries:
        return ""
    lines = ["## Audit log (actions)", "", "| time (UTC) | actor | event | detail |", "|---|---|---|---|"]
    lines += [
        f"| {e.at:%Y-%m-%d %H:%M:%S} | {e.actor} | {e.event} | {e.detail.replace('|', '/')} |"
        for e in entries
    ]
    return "\n".join(lines) + "\n"

"""Incidents: list, detail, report, and asking for an investigation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from opsagent.api.deps import ReadSessionDep, ResponderUser, RuntimeDep, ViewerUser
from opsagent.api.http_errors import error_responses as _err
from opsagent.api.report_html import action_outputs, to_html
from opsagent.api.routes.actions import audit_markdown, incident_audit
from opsagent.api.schemas import (
    AlertOut,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    InvestigationOut,
    InvestigationQueued,
    TimelineEntry,
)
from opsagent.report import to_json, to_markdown
from opsagent.store.actions import incident_requests
from opsagent.store.incidents import alerts_of, get_incident_row
from opsagent.store.incidents import list_incidents as incidents_page
from opsagent.store.investigations import (
    get_investigation_row,
    investigations_of,
    latest_result,
    request_investigation,
    require_result,
)
from opsagent.store.models import AlertRow, InvestigationRow

router = APIRouter(tags=["incidents"])

IncidentId = Annotated[str, Path(min_length=1, max_length=64, description="e.g. inc-3f1c2a9be07d4c55")]


@router.get(
    "/incidents",
    response_model=IncidentPage,
    summary="Incidents, newest first",
    responses=_err(401, 403, 422),
)
def list_incidents(
    session: ReadSessionDep,
    user: ViewerUser,
    status: Literal["open", "resolved"] | None = None,
    service: Annotated[str | None, Query(max_length=255)] = None,
    since: Annotated[datetime | None, Query(description="created at or after")] = None,
    until: Annotated[datetime | None, Query(description="created before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> IncidentPage:
    rows, total = incidents_page(
        session, status=status, service=service, since=since, until=until, limit=limit, offset=offset
    )
    return IncidentPage(items=[IncidentOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


def _audit(alerts: list[AlertRow], investigations: list[InvestigationRow]) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            at=a.received_at, actor="alertmanager", event="alert_received", detail=f"{a.name} {a.status}"
        )
        for a in alerts
    ]
    entries += [
        TimelineEntry(at=a.resolved_at, actor="alertmanager", event="alert_resolved", detail=a.name)
        for a in alerts
        if a.resolved_at is not None
    ]
    for inv in investigations:
        who = inv.requested_by or ("alert" if inv.trigger == "alert" else inv.trigger)
        entries.append(
            TimelineEntry(at=inv.created_at, actor=who, event="investigation_queued", detail=inv.id)
        )
        if inv.finished_at is not None:
            entries.append(
                TimelineEntry(
                    at=inv.finished_at,
                    actor=inv.worker or "worker",
                    event=f"investigation_{inv.status}",
                    detail=inv.id if inv.status == "done" else f"{inv.id}: {inv.error or ''}",
                )
            )
    return sorted(entries, key=lambda e: e.at)


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    summary="An incident: alerts, evidence summary, findings, actions, audit trail",
    responses=_err(401, 403, 404),
)
def get_incident(incident_id: IncidentId, session: ReadSessionDep, user: ViewerUser) -> IncidentDetail:
    row = get_incident_row(session, incident_id)
    alerts = alerts_of(session, incident_id)
    investigations = investigations_of(session, incident_id)
    inv = latest_result(session, incident_id)
    base = IncidentOut.of(row).model_dump()
    return IncidentDetail(
        **base,
        alerts=[AlertOut.of(a) for a in alerts],
        evidence=inv.evidence if inv else None,
        findings=inv.findings if inv else None,
        suspects=inv.suspects if inv else [],
        runbooks=inv.runbooks if inv else [],
        gaps=inv.gaps if inv else [],
        actions=inv.decisions if inv else [],
        investigations=[InvestigationOut.of(i) for i in investigations],
        audit=sorted(
            _audit(alerts, investigations) + incident_audit(session, incident_id), key=lambda e: e.at
        ),
    )


@router.get(
    "/incidents/{incident_id}/report",
    summary="The latest investigation's report",
    response_class=Response,
    responses={
        200: {
            "content": {"text/markdown": {}, "text/html": {}, "application/json": {}},
            "description": "the report in the format asked for",
        },
        **_err(401, 403, 404, 409),
    },
)
def get_report(
    incident_id: IncidentId,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    user: ViewerUser,
    format: Literal["markdown", "html", "json"] = "markdown",
) -> Response:
    inv = require_result(session, incident_id)
    # What the autonomy runner actually did with the actions (the investigation only has its plan).
    requests = incident_requests(session, incident_id)
    # What on-call looks for first: the dashboard link, and what the executed diagnostics printed.
    dashboard = runtime.settings.console.dashboard_url
    outputs = action_outputs(session, incident_id)
    if format in ("json", "html"):
        trail = [e.model_dump(mode="json") for e in incident_audit(session, incident_id)]
        if format == "html":
            return HTMLResponse(to_html(inv, requests, trail, dashboard_url=dashboard, outputs=outputs))
        return JSONResponse(
            {**to_json(inv, requests, dashboard_url=dashboard, outputs=outputs), "audit": trail}
        )
    markdown = to_markdown(inv, requests, dashboard_url=dashboard, outputs=outputs)
    markdown += audit_markdown(session, incident_id)
    return PlainTextResponse(markdown, media_type="text/markdown; charset=utf-8")


@router.post(
    "/incidents/{incident_id}/investigate",
    status_code=202,
    response_model=InvestigationQueued,
    summary="Queue an investigation (reuses one that is still queued or running)",
    responses=_err(401, 403, 404, 503),
)
def investigate_incident(
    incident_id: IncidentId, runtime: RuntimeDep, user: ResponderUser
) -> InvestigationQueued:
    with runtime.store.session() as s:
        inv_id, created = request_investigation(
            s, incident_id, requested_by=user.name, max_pending=runtime.settings.queue_max_pending
        )
        status = get_investigation_row(s, inv_id).status
    if created:
        runtime.queue.submit([inv_id])
    return InvestigationQueued(investigation_id=inv_id, status=status, created=created)


@router.get(
    "/investigations/{investigation_id}",
    response_model=InvestigationOut,
    summary="One investigation's state",
    responses=_err(401, 403, 404),
)
def get_investigation(
    investigation_id: Annotated[str, Path(min_length=1, max_length=64)],
    session: ReadSessionDep,
    user: ViewerUser,
) -> InvestigationOut:
    return InvestigationOut.of(get_investigation_row(session, investigation_id))

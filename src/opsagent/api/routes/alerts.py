"""Alertmanager's webhook."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body

from opsagent.api.deps import RuntimeDep, WebhookCaller
from opsagent.api.errors import ERROR_SCHEMA
from opsagent.api.schemas import AlertsAccepted
from opsagent.intake import AlertmanagerPayload, incident_from_alertmanager

router = APIRouter(tags=["alerts"])

_EXAMPLE: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate", service="checkout"}',
    "status": "firing",
    "receiver": "opsagent",
    "truncatedAlerts": 0,
    "groupLabels": {"alertname": "HighErrorRate", "service": "checkout"},
    "commonLabels": {"alertname": "HighErrorRate", "namespace": "shop", "service": "checkout"},
    "commonAnnotations": {"summary": "checkout 5xx ratio > 5%"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "namespace": "shop", "service": "checkout"},
            "annotations": {"summary": "checkout 5xx ratio > 5%"},
            "startsAt": "2026-11-28T13:58:06.172151837Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
            "fingerprint": "29dfb52689eade8a",
        }
    ],
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": why, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for code, why in {
        400: "the body is not JSON",
        401: "missing or wrong bearer token",
        403: "the token's role may not post alerts",
        413: "the body is over OPSAGENT_MAX_BODY_BYTES",
        422: "not an Alertmanager version 4 payload; the detail names the field",
        503: "the database is unavailable; nothing was stored, Alertmanager will retry",
    }.items()
}


@router.post(
    "/alerts/alertmanager",
    status_code=202,
    response_model=AlertsAccepted,
    summary="Alertmanager webhook (payload version 4)",
    description=(
        "Stores the alerts (grouped into one incident per `groupKey`; the same fingerprint and `startsAt` "
        "delivered again is recognised and not stored twice), then answers 202. Whether an investigation "
        "is queued follows the autonomy level: L0 records only. Authenticate with the webhook token "
        "(Alertmanager `http_config.authorization`) or a responder's API token."
    ),
    responses=_ERRORS,
)
async def alertmanager_webhook(
    payload: Annotated[AlertmanagerPayload, Body(openapi_examples={"firing": {"value": _EXAMPLE}})],
    runtime: RuntimeDep,
    caller: WebhookCaller,
) -> AlertsAccepted:
    incident = incident_from_alertmanager(payload)
    result = await runtime.ingest(incident)
    return AlertsAccepted(
        incident_ids=[result.incident_id],
        investigation_ids=[result.investigation_id] if result.investigation_id else [],
        accepted=result.new_alerts,
        duplicates=result.duplicates,
        resolved=result.resolved,
    )


def example_payload() -> dict[str, Any]:
    """A copy of the documented example (tests and the benchmark start from it)."""
    copy: dict[str, Any] = json.loads(json.dumps(_EXAMPLE))
    return copy

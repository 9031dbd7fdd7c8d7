"""Alertmanager's webhook."""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError

from opsagent.api.deps import RuntimeDep, WebhookCaller, authorize_webhook, bearer_token
from opsagent.api.http_errors import ERROR_SCHEMA
from opsagent.api.runtime import Runtime
from opsagent.api.schemas import AlertsAccepted
from opsagent.intake import AlertmanagerPayload, incident_from_alertmanager
from opsagent.store.ingest import IngestResult


class _WebhookRoute(APIRoute):
    """Documented (OpenAPI) from the endpoint below like any route, but served by ``_serve``.

    Under an alert storm FastAPI's generic request handling (the body decoded to Python objects, then
    validated field by field; dependencies resolved; the response model validated and serialised)
    cost the API's one event-loop thread more CPU than storing the alerts. ``_serve`` does the same
    work directly: pydantic validates the raw bytes in one pass. Errors still go through the app's
    exception handlers (``api/http_errors.py``), with the same statuses and reasons.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            return await _serve(request)

        return handle


router = APIRouter(tags=["alerts"], route_class=_WebhookRoute)

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
    # Served by ``_serve`` (see _WebhookRoute); this signature is what the OpenAPI schema shows.
    return _accepted(await runtime.ingest(incident_from_alertmanager(payload)))


def _accepted(result: IngestResult) -> AlertsAccepted:
    return AlertsAccepted(
        incident_ids=[result.incident_id],
        investigation_ids=[result.investigation_id] if result.investigation_id else [],
        accepted=result.new_alerts,
        duplicates=result.duplicates,
        resolved=result.resolved,
    )


async def _serve(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    await authorize_webhook(runtime, bearer_token(request.headers.get("authorization")))
    payload = _parse(await request.body(), request.headers.get("content-type"))
    result = await runtime.ingest(incident_from_alertmanager(payload))
    return Response(_accepted(result).model_dump_json(), status_code=202, media_type="application/json")


def _parse(body: bytes, content_type: str | None) -> AlertmanagerPayload:
    """The payload, or the RequestValidationError FastAPI would raise for this body."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    if content_type and not _is_json(content_type):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "the body must be JSON (Content-Type: application/json)",
                }
            ]
        )
    try:
        return AlertmanagerPayload.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        for err in errors:
            err["loc"] = ("body", *err["loc"])
        raise RequestValidationError(errors) from None


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )

"""The one place that maps errors to HTTP responses.

Every error body is ``{"error": <code>, "detail": <reason>}``. Our own input, auth, not-found and
conflict errors carry messages written for the caller; anything else is logged and answered with a
generic message: a client never sees a traceback or ``str()`` of an internal error.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsagent.errors import (
    AuthError,
    ConflictError,
    InputError,
    NotFoundError,
    OpsAgentError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QueueFullError,
    StoreError,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/v1/alerts/alertmanager"

# Most specific first. (error type, status, code, whether the message is safe to show)
_MAPPING: list[tuple[type[OpsAgentError], int, str, bool]] = [
    (PayloadTooLargeError, 413, "payload_too_large", True),
    (PermissionDeniedError, 403, "forbidden", True),
    (AuthError, 401, "unauthorized", True),
    (NotFoundError, 404, "not_found", True),
    (ConflictError, 409, "conflict", True),
    (InputError, 422, "invalid_input", True),
    (QueueFullError, 503, "queue_full", True),
    (StoreError, 503, "store_unavailable", False),
]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for routes that answer ``codes`` with the error body."""
    return {c: {"content": {"application/json": {"schema": ERROR_SCHEMA}}} for c in codes}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def error_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = "5"
    return JSONResponse(error_body(code, detail, **extra), status_code=status, headers=headers)


def status_of(exc: OpsAgentError) -> tuple[int, str, str]:
    for kind, status, code, safe in _MAPPING:
        if isinstance(exc, kind):
            if safe:
                return status, code, str(exc)
            if kind is StoreError:
                return status, code, "the database is unavailable; retry later"
            return status, code, "unavailable"
    return 500, "internal_error", "internal error"


def _count_webhook(request: Request, status: int) -> None:
    if request.url.path == WEBHOOK_PATH:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.webhook_requests.labels(outcome=outcome_of(status)).inc()


def outcome_of(status: int) -> str:
    return {
        400: "malformed",
        401: "unauthorized",
        403: "forbidden",
        413: "too_large",
        422: "invalid",
        503: "unavailable",
    }.get(status, "accepted" if status < 300 else "error")


def _location(loc: Any) -> str:
    return ".".join(str(p) for p in loc) or "request"


async def _on_ours(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpsAgentError)
    status, code, detail = status_of(exc)
    if status >= 500:
        log.error("request %s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    _count_webhook(request, status)
    return error_response(status, code, detail)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            _count_webhook(request, 400)
            reason = err.get("ctx", {}).get("error", "")
            return error_response(400, "malformed_json", f"the body is not valid JSON: {reason}".rstrip(": "))
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    summary = [
        {"loc": _location(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in errors[:20]
    ]
    _count_webhook(request, 422)
    return error_response(
        422,
        "invalid_request",
        f"{_location(first.get('loc', ()))}: {first.get('msg', 'invalid')}",
        errors=summary,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    _count_webhook(request, exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    response = error_response(exc.status_code, f"http_{exc.status_code}", detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    _count_webhook(request, 500)
    return error_response(500, "internal_error", "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(OpsAgentError, _on_ours)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)

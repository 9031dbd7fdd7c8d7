"""One incident's page (``/incidents/{id}``) and what is done from it: its state for the page's wait,
its Markdown report, a new investigation, approving or rejecting an action, a chat turn.

What the page shows is gathered by ``incident_page``; these handlers check who asks and answer.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from opsagent.api.ui import incident_page
from opsagent.api.ui.access import ConsoleRefusedError, form_of, need, need_post, page, runtime_of
from opsagent.errors import NotFoundError

router = APIRouter(include_in_schema=False)


@router.get("/incidents/{incident_id}")
async def incident_view(request: Request, incident_id: str) -> Response:
    session = await need(request)
    runtime = runtime_of(request)
    try:
        context = await run_in_threadpool(incident_page.build, runtime, incident_id[:64], session.name)
    except NotFoundError:
        return page(
            request,
            "message.html",
            {
                "session": session,
                "heading": "Not found",
                "message": f"There is no incident {incident_id[:64]!r}.",
            },
            404,
        )
    flash = request.query_params.get("done")
    return page(
        request,
        "incident.html",
        {"session": session, **context, "flash": flash[:300] if flash else None},
    )


@router.get("/incidents/{incident_id}/state")
async def incident_state(request: Request, incident_id: str) -> Response:
    await need(request)
    pending = await run_in_threadpool(incident_page.pending_state, runtime_of(request), incident_id[:64])
    return Response(json.dumps({"pending": pending}), media_type="application/json")


@router.get("/incidents/{incident_id}/report.md")
async def incident_markdown(request: Request, incident_id: str) -> Response:
    await need(request)
    text = await run_in_threadpool(incident_page.markdown, runtime_of(request), incident_id[:64])
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


def _back(incident_id: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"/incidents/{quote(incident_id)}?done={quote(message)}", status_code=303)


@router.post("/incidents/{incident_id}/investigate")
async def investigate_now(request: Request, incident_id: str) -> Response:
    form = await form_of(request)
    session = await need_post(request, "responder", form.get("csrf"))
    message = await run_in_threadpool(
        incident_page.request_investigation, runtime_of(request), incident_id[:64], session.name
    )
    return _back(incident_id, message)


@router.post("/incidents/{incident_id}/actions/{request_id}/{verb}")
async def decide(request: Request, incident_id: str, request_id: str, verb: str) -> Response:
    if verb not in ("approve", "reject"):
        raise ConsoleRefusedError(f"unknown decision {verb!r}", back=f"/incidents/{incident_id}")
    form = await form_of(request)
    session = await need_post(request, "responder", form.get("csrf"))
    params = {k.removeprefix("param."): v for k, v in form.items() if k.startswith("param.") and v}
    message = await run_in_threadpool(
        incident_page.decide,
        request,
        runtime_of(request),
        incident_id[:64],
        request_id[:32],
        verb,
        session.name,
        form.get("reason", "")[:2000],
        params,
    )
    return _back(incident_id, message)


@router.post("/incidents/{incident_id}/chat")
async def incident_chat(request: Request, incident_id: str) -> Response:
    """One chat turn about the incident, streamed as the API's ``/v1/chat`` streams it."""
    from opsagent.api.routes.chat import chat
    from opsagent.api.schemas import ChatRequest

    session = await need_post(request, "responder", request.headers.get("x-csrf-token"))
    try:
        raw = json.loads(await request.body())
        body = ChatRequest(
            message=raw.get("message", ""),
            conversation_id=raw.get("conversation_id") or None,
            incident_id=incident_id[:64],
        )
    except (ValueError, ValidationError, AttributeError) as exc:
        return PlainTextResponse(f"bad chat request: {type(exc).__name__}", status_code=422)
    return await chat(body, runtime_of(request), session.principal)

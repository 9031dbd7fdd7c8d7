"""Chat: one turn per request, streamed as Server-Sent Events (or one JSON answer); conversations are stored."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from opsagent.api.deps import Principal, ReadSessionDep, ResponderUser, RuntimeDep
from opsagent.api.http_errors import error_responses, status_of
from opsagent.api.runtime import Runtime
from opsagent.api.schemas import (
    ChatAnswer,
    ChatEventOut,
    ChatMessageOut,
    ChatRequest,
    ConversationOut,
    ConversationSummary,
)
from opsagent.chat import ChatEvent, ChatMessage, chat_turn, executed_actions
from opsagent.chat.binding import incident_for_question
from opsagent.domain import Investigation
from opsagent.errors import OpsAgentError
from opsagent.pipeline import investigate
from opsagent.store import conversations, incidents, investigations
from opsagent.store.actions import SqlAuditLog

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])

_ERRS = error_responses(400, 401, 403, 404, 413, 422)


@dataclass
class _Turn:
    conversation_id: str
    message: str
    history: list[ChatMessage]
    incident_id: str | None
    investigation: Investigation | None
    # Said before the answer: which open incident the question was attached to, or that none matched.
    preface: str | None = None
    texts: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    saved: bool = False


def _prepare(runtime: Runtime, body: ChatRequest, user: Principal) -> _Turn:
    """Find or start the conversation and store the question before answering it."""
    with runtime.store.session() as s:
        if body.incident_id is not None:
            incidents.get_incident_row(s, body.incident_id)
        conv = conversations.get_or_create_conversation(
            s,
            body.conversation_id,
            incident_id=body.incident_id,
            user_name=user.name,
            admin=user.role == "admin",
        )
        history = [
            ChatMessage(role="assistant" if m.role == "assistant" else "user", content=m.content)
            for m in conversations.messages_of(s, conv.id)
        ]
        conversations.append_message(s, conv.id, "user", body.message)
        incident_id = body.incident_id or conv.incident_id
        preface = None
        if incident_id is None:
            # A question about something already firing belongs to that incident (issue 21).
            binding = incident_for_question(s, body.message)
            if binding is not None:
                incident_id = conv.incident_id = binding.incident_id
                preface = (
                    f"This is about open incident {binding.incident_id} ({binding.title}; "
                    f"matched {', '.join(binding.matched)})."
                )
            else:
                preface = "No open incident matches this question, so this is a new investigation of now."
        inv = investigations.latest_result(s, incident_id) if incident_id else None
        return _Turn(conv.id, body.message, history, incident_id, inv, preface)


def _events(runtime: Runtime, turn: _Turn) -> Iterator[ChatEvent]:
    if turn.preface:
        yield ChatEvent(event="text", data={"delta": turn.preface + "\n\n"})
    inv = turn.investigation
    if turn.incident_id is not None and inv is None:
        # The incident has no finished investigation yet: run one now and keep it.
        with runtime.store.read() as s:
            incident = incidents.load_incident(s, turn.incident_id)
        inv = investigate(incident, runtime.services)
        with runtime.store.session() as s:
            investigations.store_finished(s, turn.incident_id, inv, trigger="chat")
        runtime.metrics.chat_tokens(inv)
    # What the audit log says was run for the incident: the only actions an answer may say ran.
    executed = (
        executed_actions(SqlAuditLog(runtime.store).entries(incident_id=turn.incident_id))
        if turn.incident_id is not None
        else []
    )
    yield from chat_turn(turn.message, turn.history, runtime.services, investigation=inv, executed=executed)


def _answer(runtime: Runtime, turn: _Turn) -> Iterator[ChatEvent]:
    """The turn's events, recorded as they pass; the assistant message is stored however it ends."""
    try:
        try:
            for event in _events(runtime, turn):
                if event.event == "text":
                    turn.texts.append(str(event.data.get("delta", "")))
                elif event.event == "done":
                    event = event.model_copy(
                        update={"data": {**event.data, "conversation_id": turn.conversation_id}}
                    )
                else:
                    turn.events.append(event.model_dump(mode="json"))
                yield event
        except Exception as exc:  # the stream must end with done whatever broke underneath
            # The same wording as an HTTP error: the client reads only messages written for it.
            status, _, message = (
                status_of(exc) if isinstance(exc, OpsAgentError) else (500, "", "internal error")
            )
            if status >= 500:
                log.exception("chat turn failed")
            error = ChatEvent(event="error", data={"message": f"the answer failed: {message}"})
            turn.events.append(error.model_dump(mode="json"))
            yield error
            yield ChatEvent(event="done", data={"conversation_id": turn.conversation_id})
    finally:
        _save(runtime, turn)


def _save(runtime: Runtime, turn: _Turn) -> None:
    if turn.saved:
        return
    turn.saved = True
    try:
        with runtime.store.session() as s:
            conversations.append_message(
                s, turn.conversation_id, "assistant", "".join(turn.texts), turn.events
            )
    except OpsAgentError:
        log.warning("could not store the answer of conversation %s", turn.conversation_id)


async def _sse(runtime: Runtime, turn: _Turn) -> AsyncIterator[dict[str, str]]:
    async for event in iterate_in_threadpool(_answer(runtime, turn)):
        yield {"event": event.event, "data": json.dumps(event.data)}


def _collect(runtime: Runtime, turn: _Turn) -> ChatAnswer:
    events = [ChatEventOut(event=e.event, data=e.data) for e in _answer(runtime, turn)]
    return ChatAnswer(conversation_id=turn.conversation_id, message="".join(turn.texts), events=events)


@router.post(
    "/chat",
    summary="Ask about an incident (or anything going on); one turn of a stored conversation",
    description=(
        "Streams Server-Sent Events by default: `evidence`, then `tool_call` and `text` (`{delta}`) events, "
        "`findings`, and `done` (with `conversation_id`); `error` when something failed. With "
        '`"stream": false` the answer is one JSON document. Pass `conversation_id` to continue a '
        "conversation, `incident_id` to talk about an incident."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "the answer",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": ChatAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
                },
            },
        },
        **_ERRS,
    },
)
async def chat(body: ChatRequest, runtime: RuntimeDep, user: ResponderUser) -> Response:
    turn = await run_in_threadpool(_prepare, runtime, body, user)
    if not body.stream:
        answer = await run_in_threadpool(_collect, runtime, turn)
        return JSONResponse(
            answer.model_dump(mode="json"), headers={"X-Conversation-Id": turn.conversation_id}
        )
    return EventSourceResponse(_sse(runtime, turn), headers={"X-Conversation-Id": turn.conversation_id})


@router.get(
    "/conversations",
    response_model=list[ConversationSummary],
    summary="Your conversations, most recently active first (an admin may ask for everyone's)",
    responses={c: _ERRS[c] for c in (401, 403)},
)
def list_conversations(
    session: ReadSessionDep,
    user: ResponderUser,
    everyone: Annotated[bool, Query(alias="all", description="admin only: everyone's")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ConversationSummary]:
    if everyone and user.role != "admin":
        from opsagent.errors import PermissionDeniedError

        raise PermissionDeniedError(
            f"everyone's conversations need the admin role; {user.name} is {user.role}"
        )
    rows = conversations.list_conversations(session, user_name=None if everyone else user.name, limit=limit)
    return [ConversationSummary.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    summary="A stored conversation",
    responses={c: _ERRS[c] for c in (401, 403, 404)},
)
def get_conversation(
    conversation_id: Annotated[str, Path(min_length=1, max_length=64)],
    session: ReadSessionDep,
    user: ResponderUser,
) -> ConversationOut:
    # Yours only (an admin reads any): someone else's conversation is a 404 like a missing one.
    conv = conversations.owned_conversation(
        session, conversation_id, user_name=user.name, admin=user.role == "admin"
    )
    return ConversationOut(
        id=conv.id,
        incident_id=conv.incident_id,
        created_at=conv.created_at,
        updated_at=conv.updated_at,
        messages=[
            ChatMessageOut(seq=m.seq, role=m.role, content=m.content, created_at=m.created_at)
            for m in conversations.messages_of(session, conv.id)
        ],
    )

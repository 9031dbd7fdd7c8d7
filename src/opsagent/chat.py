"""Chat: one turn of a conversation about an incident, as a stream of events.

The HTTP chat endpoint and ``opsagent ask`` both call :func:`chat_turn`; neither has its own copy.
Contract (the API codes against it):

    chat_turn(message, history, services, *, investigation=None) -> Iterator[ChatEvent]

Events, in order: ``evidence`` (what was looked at), any number of ``tool_call`` and ``text``
(``{"delta": str}``) events, ``findings`` (the structured findings the answer rests on), then
exactly one ``done`` — or an ``error`` event (``{"message": str}``, safe to show) followed by
``done``. The generator never raises for an LLM or evidence failure: it degrades to the offline
engine and says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, JsonValue

from opsagent.domain import Investigation
from opsagent.errors import OpsAgentError
from opsagent.intake import incident_from_question
from opsagent.pipeline import Services, investigate

log = logging.getLogger(__name__)

ChatRole = Literal["user", "assistant"]
ChatEventKind = Literal["evidence", "tool_call", "text", "findings", "done", "error"]


class ChatMessage(BaseModel):
    """One earlier message of the conversation."""

    role: ChatRole
    content: str


class ChatEvent(BaseModel):
    """One streamed event of a chat turn (see the module docstring for the sequence)."""

    event: ChatEventKind
    data: dict[str, JsonValue]


def evidence_event(inv: Investigation, top: int = 5) -> ChatEvent:
    ev = inv.evidence
    return ChatEvent(
        event="evidence",
        data={
            "incident_id": inv.incident.id,
            "title": inv.incident.title,
            "metrics": ev.metrics,
            "log_lines": ev.log_lines,
            "spans": ev.spans,
            "services": ev.services,
            "runbooks": [r.id for r in inv.runbooks[:top]],
            "suspects": [
                {"service": s.service, "score": s.score, "fault_type": s.fault_type.value}
                for s in inv.suspects[:top]
            ],
            "gaps": [{"source": g.source, "reason": g.reason} for g in inv.gaps],
        },
    )


def findings_event(inv: Investigation) -> ChatEvent:
    data = inv.findings.model_dump(mode="json")
    data["incident_id"] = inv.incident.id
    data["fell_back"] = inv.trace.fell_back
    return ChatEvent(event="findings", data=data)


def offline_answer(inv: Investigation) -> list[str]:
    """The engine's findings as short paragraphs (no LLM): what a person asked about first."""
    f = inv.findings
    parts = [f.summary or "No clear root cause in the evidence."]
    if len(f.root_causes) > 1:
        others = ", ".join(f"{rc.service} ({rc.confidence:.2f})" for rc in f.root_causes[1:4])
        parts.append(f"Other candidates: {others}.")
    if inv.runbooks:
        parts.append(f"Runbook: {inv.runbooks[0].title} ({inv.runbooks[0].id}).")
    if f.remediation:
        parts.append("Next steps: " + " ".join(f"{i}. {s}" for i, s in enumerate(f.remediation[:4], 1)))
    if inv.gaps:
        parts.append("Missing evidence: " + "; ".join(f"{g.source}: {g.reason}" for g in inv.gaps))
    return parts


def _done(inv: Investigation | None, started: float, reasoner: str, **extra: JsonValue) -> ChatEvent:
    data: dict[str, JsonValue] = {
        "reasoner": reasoner,
        "incident_id": inv.incident.id if inv else None,
        "seconds": round(time.perf_counter() - started, 4),
    }
    data.update(extra)
    return ChatEvent(event="done", data=data)


def chat_turn(
    message: str,
    history: list[ChatMessage],
    services: Services,
    *,
    investigation: Investigation | None = None,
) -> Iterator[ChatEvent]:
    """Answer one chat message. Without an investigation, one is run for an incident built from it."""
    started = time.perf_counter()
    inv = investigation
    if inv is None:
        try:
            inv = investigate(incident_from_question(message), services)
        except OpsAgentError as exc:
            yield ChatEvent(event="error", data={"message": f"investigation failed: {exc}"})
            yield _done(None, started, "none")
            return
        except Exception:  # the chat stream must end cleanly whatever broke underneath
            log.exception("investigation for a chat message failed")
            yield ChatEvent(event="error", data={"message": "investigation failed (internal error)"})
            yield _done(None, started, "none")
            return
    yield evidence_event(inv)
    for i, part in enumerate(offline_answer(inv)):
        yield ChatEvent(event="text", data={"delta": ("\n\n" if i else "") + part})
    yield findings_event(inv)
    yield _done(inv, started, "offline")

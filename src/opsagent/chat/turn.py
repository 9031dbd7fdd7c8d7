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

import functools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, JsonValue

from opsagent.domain import Investigation
from opsagent.errors import InputError, LLMError, OpsAgentError
from opsagent.intake import incident_from_question
from opsagent.pipeline import Services, investigate

if TYPE_CHECKING:
    from opsagent.reasoning.prompts import PromptLibrary

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


def offline_answer(inv: Investigation, executed: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The engine's findings as short paragraphs (no LLM): what a person asked about first, and the
    actions the audit log records as started (``executed``: action id, service)."""
    f = inv.findings
    parts = [f.summary or "No clear root cause in the evidence."]
    if len(f.root_causes) > 1:
        others = ", ".join(f"{rc.service} ({rc.confidence:.2f})" for rc in f.root_causes[1:4])
        parts.append(f"Other candidates: {others}.")
    if inv.runbooks:
        parts.append(f"Runbook: {inv.runbooks[0].title} ({inv.runbooks[0].id}).")
    if f.remediation:
        parts.append("Next steps: " + " ".join(f"{i}. {s}" for i, s in enumerate(f.remediation[:4], 1)))
    if executed:
        parts.append("Actions run (audit log): " + ", ".join(f"{a} on {s}" for a, s in executed) + ".")
    if inv.gaps:
        parts.append("Missing evidence: " + "; ".join(f"{g.source}: {g.reason}" for g in inv.gaps))
    return parts


class AuditLine(Protocol):
    """What ``executed_actions`` reads of an audit-log entry."""

    @property
    def kind(self) -> str: ...
    @property
    def action_id(self) -> str | None: ...
    @property
    def service(self) -> str | None: ...


def executed_actions(entries: Iterable[AuditLine]) -> list[tuple[str, str]]:
    """(action id, service) of each action an incident's audit log records as started: what a chat
    answer may say ran (``chat_turn(..., executed=...)``)."""
    seen = [(e.action_id, e.service) for e in entries if e.kind == "execution_started"]
    return list(dict.fromkeys((a, s) for a, s in seen if a and s))


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
    executed: Sequence[tuple[str, str]] = (),
) -> Iterator[ChatEvent]:
    """Answer one chat message. Without an investigation, one is run for an incident built from it.

    ``executed``: (action id, service) of each action the incident's audit log records as started;
    an answer may say an action ran only where this says so.
    """
    started = time.perf_counter()
    inv = investigation
    if inv is None:
        try:
            inv = investigate(incident_from_question(message), services)
        except InputError as exc:  # written for the person who gave the input
            yield ChatEvent(event="error", data={"message": f"investigation failed: {exc}"})
            yield _done(None, started, "none")
            return
        except OpsAgentError:
            log.exception("investigation for a chat message failed")
            yield ChatEvent(event="error", data={"message": "investigation failed (see the service log)"})
            yield _done(None, started, "none")
            return
        except Exception:  # the chat stream must end cleanly whatever broke underneath
            log.exception("investigation for a chat message failed")
            yield ChatEvent(event="error", data={"message": "investigation failed (internal error)"})
            yield _done(None, started, "none")
            return
    yield evidence_event(inv)
    if services.settings.llm.configured:
        yield from _llm_answer(message, history, services, inv, started, executed)
        return
    yield from _offline_events(inv, executed, message, history)
    yield _done(inv, started, "offline")


def _investigation_json(inv: Investigation, executed: Sequence[tuple[str, str]]) -> dict[str, JsonValue]:
    """The investigation, condensed for the chat prompt (the report minus the bulky parts)."""
    from opsagent.reasoning.evidence_json import (
        TOP_SUSPECTS,
        TOP_TEMPLATES,
        runbook_json,
        suspect_json,
        template_json,
    )
    from opsagent.report import reasoner_detail

    f = inv.findings
    changed = [t for t in (inv.log_summary.templates if inv.log_summary else []) if t.change != "steady"]
    log_templates: list[JsonValue] = [template_json(t) for t in changed[:TOP_TEMPLATES]]
    return {
        "incident": {"id": inv.incident.id, "title": inv.incident.title, "question": inv.incident.question},
        "autonomy_level": inv.autonomy_level.value,
        "investigated_at": inv.finished_at.isoformat(),
        "reasoner": reasoner_detail(inv.trace, f.reasoner),
        "summary": f.summary,
        "root_causes": [
            {
                "service": rc.service,
                "fault_type": rc.fault_type.value,
                "confidence": rc.confidence,
                "evidence": [{"id": e.id, "summary": e.summary} for e in rc.evidence],
            }
            for rc in f.root_causes
        ],
        "suspects": [suspect_json(s) for s in inv.suspects[:TOP_SUSPECTS]],
        "log_templates": log_templates,
        "runbooks": [runbook_json(r, steps=6) for r in inv.runbooks[:3]],
        "remediation": list(f.remediation),
        "actions": [
            {"action": d.action.action_id, "target": d.action.target.service, "decision": d.outcome.value}
            for d in inv.decisions
        ],
        "actions_run": [{"action": a, "target": svc} for a, svc in executed],
        "gaps": [{"source": g.source, "reason": g.reason} for g in inv.gaps],
        "notes": list(f.notes),
    }


@functools.lru_cache(maxsize=8)
def _prompt_library(directory: Path) -> PromptLibrary:
    """One library per (absolute) prompts folder, kept: a chat turn renders the prompts, it need not
    read and compile them again (the LLM reasoner likewise keeps the library it was built with)."""
    from opsagent.reasoning.prompts import PromptLibrary

    return PromptLibrary(directory)


def _offline_events(
    inv: Investigation,
    executed: Sequence[tuple[str, str]],
    message: str = "",
    history: Sequence[ChatMessage] = (),
) -> Iterator[ChatEvent]:
    """The engine's answer: to the question asked, given the conversation so far (chat.offline)."""
    from opsagent.chat.offline import offline_reply

    parts = offline_reply(inv, message, history, executed) if message else offline_answer(inv, executed)
    for i, part in enumerate(parts):
        yield ChatEvent(event="text", data={"delta": ("\n\n" if i else "") + part})
    yield findings_event(inv)


def _llm_answer(
    message: str,
    history: list[ChatMessage],
    services: Services,
    inv: Investigation,
    started: float,
    executed: Sequence[tuple[str, str]],
) -> Iterator[ChatEvent]:
    """The agent's answer over the investigation, once grounded; else the offline answer, said so."""
    from opsagent.reasoning.agent import TextDelta, llm_error
    from opsagent.reasoning.chat_turn import LLMChatTurn, UngroundedAnswerError
    from opsagent.reasoning.prompts import resolve_prompts_dir

    settings = services.settings
    turn: LLMChatTurn | None = None
    try:
        turn = LLMChatTurn(
            settings.llm,
            _prompt_library(resolve_prompts_dir(settings.prompts_dir).resolve()),
            inv,
            _investigation_json(inv, executed),
            runbooks=services.runbooks,
            executed=executed,
        )
        for event in turn.stream(message, [(m.role, m.content) for m in history]):
            if isinstance(event, TextDelta):
                yield ChatEvent(event="text", data={"delta": event.text})
            else:
                yield ChatEvent(event="tool_call", data={"name": event.name, "args": event.args})
    except UngroundedAnswerError as exc:
        log.info("chat answer rejected twice: %s", exc.problems)
        yield ChatEvent(
            event="error",
            data={
                "message": "the LLM's answer was rejected (it asserted what the evidence does not back: "
                f"{exc}); answering from the engine's findings"
            },
        )
        yield from _offline_events(inv, executed, message, history)
        yield _done(inv, started, "offline", fell_back=True, rejected=list(exc.problems))
        return
    except Exception as exc:  # a failing LLM must not end the chat stream badly
        err = exc if isinstance(exc, OpsAgentError) else llm_error(exc)
        if not isinstance(err, LLMError):
            log.warning("chat LLM path failed: %s", err)
        # LLMError messages are ours, written for the user ("endpoint answered HTTP 429"); anything
        # else may carry internals, so the client gets only its kind.
        reason = str(err) if isinstance(err, LLMError) else type(err).__name__
        yield ChatEvent(
            event="error",
            data={"message": f"LLM unavailable ({reason}); answering from the engine's findings"},
        )
        yield from _offline_events(inv, executed, message, history)
        yield _done(inv, started, "offline", fell_back=True)
        return
    budget = turn.budget
    yield findings_event(inv)
    yield _done(
        inv,
        started,
        "llm",
        model=settings.llm.model,
        prompt_tokens=budget.prompt_tokens,
        completion_tokens=budget.completion_tokens,
        steps=budget.steps,
        prompts=[r.model_dump() for r in turn.records],
    )

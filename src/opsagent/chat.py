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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, JsonValue

from opsagent.domain import EvidenceBundle, Investigation
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
        yield from _llm_answer(message, history, services, inv, started)
        return
    for i, part in enumerate(offline_answer(inv)):
        yield ChatEvent(event="text", data={"delta": ("\n\n" if i else "") + part})
    yield findings_event(inv)
    yield _done(inv, started, "offline")


# Read-only tools the chat may use: the investigation's suspects and the runbook library.
CHAT_TOOLS = ("get_suspects", "search_runbooks")


def _investigation_json(inv: Investigation) -> dict[str, JsonValue]:
    """The investigation, condensed for the chat prompt (the report minus the bulky parts)."""
    from opsagent.reasoning.tools import (
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
        "gaps": [{"source": g.source, "reason": g.reason} for g in inv.gaps],
        "notes": list(f.notes),
    }


@functools.lru_cache(maxsize=8)
def _prompt_library(directory: Path) -> PromptLibrary:
    """One library per (absolute) prompts folder, kept: a chat turn renders the prompts, it need not
    read and compile them again (the LLM reasoner likewise keeps the library it was built with)."""
    from opsagent.reasoning.prompts import PromptLibrary

    return PromptLibrary(directory)


def _llm_answer(
    message: str,
    history: list[ChatMessage],
    services: Services,
    inv: Investigation,
    started: float,
) -> Iterator[ChatEvent]:
    """Stream the model's answer over the investigation; on failure, the offline answer, said so."""
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage

    from opsagent.reasoning.llm import Budget, BudgetMiddleware, chat_model, langchain_tools, llm_error
    from opsagent.reasoning.prompts import resolve_prompts_dir
    from opsagent.reasoning.tools import Toolbox

    settings = services.settings
    budget = Budget(settings.llm)
    try:
        library = _prompt_library(resolve_prompts_dir(settings.prompts_dir).resolve())
        system = library.get("chat-system")
        context = library.get("chat-context")
        box = Toolbox(
            bundle=EvidenceBundle(incident=inv.incident, runbooks=inv.runbooks),
            suspects=inv.suspects,
            runbooks=services.runbooks,
        )
        agent: Any = create_agent(
            chat_model(settings.llm),
            tools=langchain_tools(box, library.tools(), CHAT_TOOLS),
            system_prompt=system.render() + "\n\n" + context.render(investigation=_investigation_json(inv)),
            middleware=[BudgetMiddleware(budget, None)],
        )
        messages: list[BaseMessage] = [
            HumanMessage(m.content) if m.role == "user" else AIMessage(m.content) for m in history
        ]
        messages.append(HumanMessage(message))
        for mode, payload in agent.stream(
            {"messages": messages},
            config={"recursion_limit": 2 * settings.llm.max_steps + 1},
            stream_mode=["messages", "updates"],
        ):
            if mode == "messages":
                chunk, meta = payload
                if isinstance(chunk, AIMessageChunk) and meta.get("langgraph_node") == "model" and chunk.text:
                    yield ChatEvent(event="text", data={"delta": chunk.text})
            elif mode == "updates":
                for update in payload.values():
                    for msg in (update or {}).get("messages", []):
                        if isinstance(msg, AIMessage):
                            for call in msg.tool_calls:
                                yield ChatEvent(
                                    event="tool_call", data={"name": call["name"], "args": call["args"]}
                                )
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
        for i, part in enumerate(offline_answer(inv)):
            yield ChatEvent(event="text", data={"delta": ("\n\n" if i else "") + part})
        yield findings_event(inv)
        yield _done(inv, started, "offline", fell_back=True)
        return
    yield findings_event(inv)
    yield _done(
        inv,
        started,
        "llm",
        model=settings.llm.model,
        prompt_tokens=budget.prompt_tokens,
        completion_tokens=budget.completion_tokens,
        steps=budget.steps,
        prompts=[p.record.model_dump() for p in (system, context)],
    )

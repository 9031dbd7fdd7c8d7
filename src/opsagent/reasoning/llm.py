"""The LLM reasoner: a LangChain tool-calling agent over the engine's suspects and the same evidence.

It starts from the statistical engine's ranked suspects (condensed into a compact first prompt),
may call tools over the same ``EvidenceBundle``, runbook index and action catalogue (see
``reasoning/tools.py``), and must end with a JSON answer that becomes the same ``Findings`` model
the offline reasoner returns. Citations must name evidence ids it was shown, services must be in
the evidence, actions must be catalogued with schema-valid parameters.

Failure handling, in order: the OpenAI client retries timeouts, 429s and 5xx with exponential
backoff (honouring ``Retry-After``); an answer that fails validation gets one retry with the
problems listed; anything else — a second bad answer, an endpoint that stays down, an exhausted
budget — degrades to the offline engine's findings with ``trace.fell_back`` set and a note. It
never raises.

Budgets (``LLMSettings``): model steps, cumulative prompt tokens (from the API's ``usage``
fields; a chars/4 estimate only where a server sends none), wall time. On the last affordable step
the tools are withdrawn so the model has to answer.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import openai
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from opsagent.config import LLMSettings
from opsagent.domain import (
    EvidenceBundle,
    FaultType,
    Findings,
    PromptRecord,
    ProposedAction,
    ReasonerTrace,
    RootCause,
    Suspect,
)
from opsagent.errors import ActionValidationError, ConfigError, LLMError, LLMOutputError, LLMTimeoutError
from opsagent.reasoning.base import Reasoner, Reasoning
from opsagent.reasoning.offline import OfflineReasoner
from opsagent.reasoning.prompts import PromptLibrary, ToolTexts
from opsagent.reasoning.tools import (
    TOOL_ARGS,
    ActionCatalogLike,
    LogCondenser,
    PromQLRunner,
    RunbookSearchLike,
    Toolbox,
    run_tool,
)

log = logging.getLogger(__name__)

INVESTIGATOR_TOOLS = tuple(TOOL_ARGS)
# Rough size of a token for budget checks before a request is sent (the API's usage is the truth).
CHARS_PER_TOKEN = 4
MAX_PROBLEMS = 8


def chat_model(settings: LLMSettings) -> ChatOpenAI:
    """The one client for the configured OpenAI-compatible endpoint."""
    if not settings.configured:
        raise ConfigError("no LLM configured: set OPSAGENT_LLM__BASE_URL and OPSAGENT_LLM__MODEL")
    return ChatOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key,
        model=str(settings.model),
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
        temperature=settings.temperature,
        # Token counts come from the server's usage fields, streamed or not; never a tokenizer.
        stream_usage=True,
    )


def llm_error(exc: Exception) -> LLMError:
    """A library exception as one of ours, with a message safe to put in a report."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeoutError("the LLM endpoint timed out (after the client's retries)")
    if isinstance(exc, openai.RateLimitError):
        return LLMError("the LLM endpoint kept rate-limiting (HTTP 429) after the client's retries")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("cannot connect to the LLM endpoint")
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"the LLM endpoint answered HTTP {exc.status_code}")
    if isinstance(exc, openai.OpenAIError):
        return LLMError(f"LLM client error ({type(exc).__name__})")
    return LLMError(f"internal error in the LLM reasoner ({type(exc).__name__})")


# --- the answer the model must give -----------------------------------------------------------


class AnswerCause(BaseModel):
    model_config = ConfigDict(extra="ignore")

    service: str
    fault_type: FaultType
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = ""
    evidence_ids: list[str] = Field(min_length=1)


class AnswerAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_id: str
    service: str
    namespace: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    reason: str = ""


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = ""
    root_causes: list[AnswerCause]
    remediation: list[str] = Field(default_factory=list)
    actions: list[AnswerAction] = Field(default_factory=list)


class InvalidAnswerError(LLMOutputError):
    """The model's final answer failed validation; ``problems`` go back to it once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:MAX_PROBLEMS]))
        self.problems = problems[:MAX_PROBLEMS]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _json_object(text: str) -> object:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise InvalidAnswerError(["the answer is not a JSON object"])
    try:
        return json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidAnswerError([f"the answer is not valid JSON: {exc.msg} at char {exc.pos}"]) from None


def parse_answer(text: str, box: Toolbox) -> tuple[Answer, list[ProposedAction]]:
    """The validated answer and its validated actions; ``InvalidAnswerError`` lists every problem."""
    raw = _json_object(text)
    try:
        answer = Answer.model_validate(raw)
    except ValidationError as exc:
        raise InvalidAnswerError(
            [f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems: list[str] = []
    services = box.known_services
    for i, cause in enumerate(answer.root_causes):
        if cause.service not in services:
            problems.append(f"root_causes.{i}.service: {cause.service!r} does not appear in the evidence")
        unknown = [e for e in cause.evidence_ids if e not in box.citable]
        if unknown:
            problems.append(f"root_causes.{i}.evidence_ids: unknown ids {unknown[:5]}")
    actions: list[ProposedAction] = []
    for i, act in enumerate(answer.actions):
        try:
            actions.append(
                box.validate_proposal(act.action_id, act.service, act.params, act.namespace, act.reason)
            )
        except ActionValidationError as exc:
            problems.append(f"actions.{i}: {exc}")
    if problems:
        raise InvalidAnswerError(problems)
    return answer, actions


# --- budget --------------------------------------------------------------------------------------


class LLMBudgetError(LLMError):
    """A budget of the investigation (steps, prompt tokens, wall time) ran out."""


@dataclass
class Budget:
    """What one investigation (or chat turn) has spent, checked before every model call."""

    settings: LLMSettings
    started: float = field(default_factory=time.perf_counter)
    steps: int = 0
    extra_steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_tokens: bool = False
    request_chars: list[int] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def step_limit(self) -> int:
        return self.settings.max_steps + self.extra_steps

    def before_call(self, chars: int) -> bool:
        """Raise if the call cannot be afforded; True when it must be the last (tools withdrawn)."""
        estimate = chars // CHARS_PER_TOKEN
        remaining = self.settings.max_prompt_tokens - self.prompt_tokens
        if self.elapsed >= self.settings.max_seconds:
            raise LLMBudgetError(f"time budget of {self.settings.max_seconds:g}s used up")
        if self.steps >= self.step_limit:
            raise LLMBudgetError(f"step budget of {self.settings.max_steps} model calls used up")
        if estimate > remaining:
            raise LLMBudgetError(
                f"prompt-token budget of {self.settings.max_prompt_tokens} would be exceeded "
                f"({self.prompt_tokens} used, ~{estimate} more needed)"
            )
        self.steps += 1
        self.request_chars.append(chars)
        return self.steps >= self.step_limit or 2 * estimate > remaining

    def record(self, message: BaseMessage, chars: int) -> None:
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        if usage:
            self.prompt_tokens += int(usage.get("input_tokens", 0))
            self.completion_tokens += int(usage.get("output_tokens", 0))
        else:
            # Some servers (older llama.cpp, some proxies) send no usage: estimate, and say so.
            self.estimated_tokens = True
            self.prompt_tokens += chars // CHARS_PER_TOKEN
            self.completion_tokens += len(str(message.content)) // CHARS_PER_TOKEN


def request_chars(request: ModelRequest[Any]) -> int:
    system = len(str(request.system_message.content)) if request.system_message else 0
    tools = sum(len(str(getattr(t, "description", ""))) + 200 for t in request.tools)
    return system + tools + sum(len(str(m.content)) + len(str(m.additional_kwargs)) for m in request.messages)


class BudgetMiddleware(AgentMiddleware):
    """Enforces the budget around every model call and records the usage of each response."""

    def __init__(self, budget: Budget, final_prompt: str | None) -> None:
        super().__init__()
        self.budget = budget
        self.final_prompt = final_prompt

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        chars = request_chars(request)
        last = self.budget.before_call(chars)
        if last and request.tools and self.final_prompt:
            request = request.override(
                tools=[], messages=[*request.messages, HumanMessage(self.final_prompt)]
            )
        response = handler(request)
        for message in response.result:
            if isinstance(message, AIMessage):
                self.budget.record(message, chars)
        return response


def langchain_tools(box: Toolbox, texts: ToolTexts, names: Sequence[str]) -> list[BaseTool]:
    """The toolbox's tools as LangChain tools; a tool failure is a result the model reads, not a crash."""

    def make(name: str) -> BaseTool:
        def call(**kwargs: Any) -> str:
            try:
                return run_tool(box, name, kwargs)
            except ValidationError as exc:
                first = exc.errors()[0]
                return json.dumps({"error": f"bad arguments: {first['loc']}: {first['msg']}"})
            except Exception as exc:  # a tool bug must not end the investigation
                log.exception("tool %s failed", name)
                return json.dumps({"error": f"tool failed ({type(exc).__name__})"})

        return StructuredTool.from_function(
            func=call,
            name=name,
            description=texts.descriptions.get(name, name),
            args_schema=TOOL_ARGS[name],
        )

    return [make(n) for n in names]


def final_text(messages: Sequence[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return message.text if isinstance(message.content, list) else str(message.content)
    return ""


# --- the reasoner --------------------------------------------------------------------------------


@dataclass
class LLMReasoner:
    """``Reasoner`` backed by an OpenAI-compatible endpoint; degrades to ``fallback`` on failure."""

    settings: LLMSettings
    prompts: PromptLibrary
    catalog: ActionCatalogLike | None = None
    runbooks: RunbookSearchLike | None = None
    condense_logs: LogCondenser | None = None
    promql: PromQLRunner | None = None
    fallback: Reasoner = field(default_factory=OfflineReasoner)
    model: BaseChatModel | None = None
    name: str = "llm"

    def bound(
        self,
        *,
        catalog: ActionCatalogLike | None = None,
        runbooks: RunbookSearchLike | None = None,
        condense_logs: LogCondenser | None = None,
        promql: PromQLRunner | None = None,
    ) -> LLMReasoner:
        """A copy wired to the services' catalogue, runbook index, log condenser and Prometheus."""
        return replace(
            self,
            catalog=catalog or self.catalog,
            runbooks=runbooks or self.runbooks,
            condense_logs=condense_logs or self.condense_logs,
            promql=promql or self.promql,
        )

    @property
    def model_id(self) -> str:
        return str(self.settings.model)

    def reason(self, bundle: EvidenceBundle, suspects: list[Suspect]) -> Reasoning:
        budget = Budget(self.settings)
        box = Toolbox(
            bundle=bundle,
            suspects=suspects,
            catalog=self.catalog,
            runbooks=self.runbooks,
            condense_logs=self.condense_logs,
            promql=self.promql,
        )
        records: list[PromptRecord] = []
        notes: list[str] = []
        try:
            findings = self._investigate(box, budget, records, notes)
        except LLMError as exc:
            return self._fell_back(bundle, suspects, budget, records, notes, str(exc))
        except Exception as exc:  # never crash an investigation over the LLM
            log.exception("LLM reasoner failed")
            return self._fell_back(bundle, suspects, budget, records, notes, str(llm_error(exc)))
        return Reasoning(findings=findings, trace=self._trace(budget, records, notes))

    def _trace(
        self,
        budget: Budget,
        records: list[PromptRecord],
        notes: list[str],
        fallback_reason: str | None = None,
    ) -> ReasonerTrace:
        if budget.estimated_tokens:
            notes = [*notes, "the endpoint sent no usage for some calls: those tokens are chars/4 estimates"]
        return ReasonerTrace(
            reasoner=self.name,
            model=self.model_id,
            prompts=records,
            prompt_tokens=budget.prompt_tokens,
            completion_tokens=budget.completion_tokens,
            steps=budget.steps,
            seconds=round(budget.elapsed, 4),
            fell_back=fallback_reason is not None,
            fallback_reason=fallback_reason,
            notes=notes,
        )

    def _fell_back(
        self,
        bundle: EvidenceBundle,
        suspects: list[Suspect],
        budget: Budget,
        records: list[PromptRecord],
        notes: list[str],
        why: str,
    ) -> Reasoning:
        note = f"LLM reasoner ({self.model_id}) fell back to the {self.fallback.name} engine: {why}"
        offline = self.fallback.reason(bundle, suspects)
        findings = offline.findings.model_copy(update={"notes": [*offline.findings.notes, note]})
        return Reasoning(findings=findings, trace=self._trace(budget, records, [*notes, note], why))

    def _investigate(
        self, box: Toolbox, budget: Budget, records: list[PromptRecord], notes: list[str]
    ) -> Findings:
        system = self.prompts.get("investigator-system")
        task = self.prompts.get("investigator-task")
        retry = self.prompts.get("investigator-retry")
        final = self.prompts.get("investigator-final")
        texts = self.prompts.tools()
        records.extend([system.record, task.record, texts.record])
        names = [n for n in INVESTIGATOR_TOOLS if n != "propose_action" or self.catalog is not None]
        agent = create_agent(
            self.model or chat_model(self.settings),
            tools=langchain_tools(box, texts, names),
            system_prompt=system.render(
                max_steps=self.settings.max_steps, fault_types=[f.value for f in FaultType]
            ),
            middleware=[BudgetMiddleware(budget, final.render())],
        )
        records.append(final.record)
        messages: list[AnyMessage] = [HumanMessage(task.render(**box.context()))]
        messages = self._invoke(agent, messages)
        try:
            answer, actions = parse_answer(final_text(messages), box)
        except InvalidAnswerError as exc:
            notes.append(f"first answer rejected: {exc}")
            records.append(retry.record)
            budget.extra_steps = 1  # the one correction is allowed past the step budget
            messages = self._invoke(agent, [*messages, HumanMessage(retry.render(problems=exc.problems))])
            try:
                answer, actions = parse_answer(final_text(messages), box)
            except InvalidAnswerError as again:
                raise InvalidAnswerError([f"answer still invalid after one retry: {again}"]) from None
        return self._findings(answer, actions, box, notes)

    def _invoke(self, agent: Any, messages: list[AnyMessage]) -> list[AnyMessage]:
        try:
            state = agent.invoke(
                {"messages": messages},
                config={"recursion_limit": 2 * (self.settings.max_steps + 2) + 1},
            )
        except Exception as exc:
            raise llm_error(exc) from exc
        out: list[AnyMessage] = state["messages"]
        return out

    def _findings(
        self, answer: Answer, actions: list[ProposedAction], box: Toolbox, notes: list[str]
    ) -> Findings:
        root_causes = [
            RootCause(
                service=c.service,
                fault_type=c.fault_type,
                confidence=c.confidence,
                summary=c.summary,
                evidence=[box.citable[i] for i in dict.fromkeys(c.evidence_ids)],
            )
            for c in answer.root_causes
        ]
        ranking = list(dict.fromkeys([*(c.service for c in root_causes), *(s.service for s in box.suspects)]))
        merged: dict[tuple[str, str, str | None], ProposedAction] = {}
        for action in [*box.proposals, *actions]:
            merged.setdefault((action.action_id, action.target.service, action.target.namespace), action)
        if box.calls:
            notes.append("tools used: " + ", ".join(box.calls))
        return Findings(
            reasoner=self.name,
            root_causes=root_causes,
            ranking=ranking,
            remediation=answer.remediation,
            actions=list(merged.values()),
            summary=answer.summary,
            notes=list(notes),
        )

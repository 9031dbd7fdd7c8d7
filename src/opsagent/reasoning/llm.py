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

The model, its tools, the budget (steps, prompt tokens, a wall clock that cancels a call in
flight) are the one agent of ``reasoning/agent.py``; this module runs it to completion and turns
its answer into findings.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
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
from opsagent.errors import ActionValidationError, LLMError, LLMOutputError
from opsagent.reasoning.agent import Agent, Budget, final_text, langchain_tools, llm_error
from opsagent.reasoning.base import Reasoner, Reasoning
from opsagent.reasoning.offline import OfflineReasoner
from opsagent.reasoning.prompts import PromptLibrary
from opsagent.reasoning.tools import (
    TOOL_ARGS,
    ActionCatalogLike,
    LogCondenser,
    PromQLRunner,
    RunbookSearchLike,
    Toolbox,
)

log = logging.getLogger(__name__)

INVESTIGATOR_TOOLS = tuple(TOOL_ARGS)
MAX_PROBLEMS = 8


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
        agent = Agent(
            self.settings,
            tools=langchain_tools(box, texts, names),
            system_prompt=system.render(
                max_steps=self.settings.max_steps, fault_types=[f.value for f in FaultType]
            ),
            budget=budget,
            final_prompt=final.render(),
            model=self.model,
        )
        records.append(final.record)
        messages: list[AnyMessage] = [HumanMessage(task.render(**box.context()))]
        messages = agent.run(messages)
        try:
            answer, actions = parse_answer(final_text(messages), box)
        except InvalidAnswerError as exc:
            notes.append(f"first answer rejected: {exc}")
            records.append(retry.record)
            budget.extra_steps = 1  # the one correction is allowed past the step budget
            messages = agent.run([*messages, HumanMessage(retry.render(problems=exc.problems))])
            try:
                answer, actions = parse_answer(final_text(messages), box)
            except InvalidAnswerError as again:
                raise InvalidAnswerError([f"answer still invalid after one retry: {again}"]) from None
        return self._findings(answer, actions, box, notes)

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

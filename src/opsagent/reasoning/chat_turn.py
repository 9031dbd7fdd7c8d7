"""The LLM side of a chat turn: the one agent, run streaming over a finished investigation, its
answer held back until it is grounded.

Tool calls reach the caller as they happen; the answer's text only once ``Grounding`` accepts it
(citations, service names, claims that an action ran; see ``reasoning/grounding.py``), so a
person never reads an ungrounded answer. A rejected answer gets one retry with its problems
listed; a second rejection raises ``UngroundedAnswerError``, and the caller answers offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from pydantic import JsonValue

from opsagent.config import LLMSettings
from opsagent.domain import EvidenceBundle, Investigation, PromptRecord
from opsagent.errors import LLMOutputError
from opsagent.reasoning.agent import Agent, AgentEvent, Budget, TextDelta, ToolCalled, langchain_tools
from opsagent.reasoning.grounding import Grounding
from opsagent.reasoning.prompts import PromptLibrary
from opsagent.reasoning.tools import RunbookSearchLike, Toolbox

# Read-only tools the chat may use: the investigation's suspects and the runbook library.
CHAT_TOOLS = ("get_suspects", "search_runbooks")

Role = Literal["user", "assistant"]


class UngroundedAnswerError(LLMOutputError):
    """The model's chat answer asserted what the evidence or the audit log does not back, twice."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:3]))
        self.problems = problems


@dataclass
class LLMChatTurn:
    """One chat turn through the LLM over ``investigation``.

    ``executed``: (action id, service) of each action the incident's audit log records as started;
    the answer may say an action ran only where this says so.
    """

    settings: LLMSettings
    prompts: PromptLibrary
    investigation: Investigation
    context: dict[str, JsonValue]
    runbooks: RunbookSearchLike | None = None
    executed: Sequence[tuple[str, str]] = ()
    model: BaseChatModel | None = None
    budget: Budget = field(init=False)
    records: list[PromptRecord] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.budget = Budget(self.settings)

    def stream(self, question: str, history: Iterable[tuple[Role, str]]) -> Iterator[AgentEvent]:
        """Tool calls as they happen, then the grounded answer's text; raises ``LLMError``."""
        inv = self.investigation
        system = self.prompts.get("chat-system")
        context = self.prompts.get("chat-context")
        retry = self.prompts.get("chat-retry")
        self.records.extend([system.record, context.record])
        box = Toolbox(
            bundle=EvidenceBundle(incident=inv.incident, runbooks=inv.runbooks),
            suspects=inv.suspects,
            runbooks=self.runbooks,
        )
        agent = Agent(
            self.settings,
            tools=langchain_tools(box, self.prompts.tools(), CHAT_TOOLS),
            system_prompt=system.render() + "\n\n" + context.render(investigation=self.context),
            budget=self.budget,
            model=self.model,
            recursion_limit=2 * self.settings.max_steps + 1,
        )
        messages: list[AnyMessage] = [
            HumanMessage(text) if role == "user" else AIMessage(text) for role, text in history
        ]
        messages.append(HumanMessage(question))
        for attempt in (1, 2):
            held: list[TextDelta] = []
            for event in agent.run_stream(messages):
                if isinstance(event, ToolCalled):
                    yield event
                else:
                    held.append(event)
            problems = self.grounding(box).problems("".join(d.text for d in held))
            if not problems:
                self.rejected = []
                yield from held
                return
            self.rejected = problems
            if attempt == 2:
                raise UngroundedAnswerError(problems)
            self.records.append(retry.record)
            self.budget.extra_steps += 1  # the one correction is allowed past the step budget
            messages = [*agent.messages, HumanMessage(retry.render(problems=problems))]

    def grounding(self, box: Toolbox) -> Grounding:
        """What the answer may rest on: the services and evidence of the investigation (and any the
        tools showed), and the actions the audit log says were started."""
        inv = self.investigation
        causes = inv.findings.root_causes
        services = box.known_services | set(inv.incident.services) | {c.service for c in causes}
        citable = set(box.citable) | {e.id for c in causes for e in c.evidence}
        return Grounding.of(services, citable, self.executed)

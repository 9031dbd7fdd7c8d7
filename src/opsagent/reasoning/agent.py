"""The one LLM agent: model, tools, budget and prompts, run to completion or streamed.

An investigation runs the agent to completion (``Agent.run``); a chat turn runs the same agent
streaming (``Agent.run_stream``), the way pydantic-ai's ``run`` and ``run_stream`` drive one graph.
Both go through the same LangChain tool-calling graph, the same ``BudgetMiddleware`` and the same
wall clock.

The budget (``LLMSettings``) counts model steps, cumulative prompt tokens (from the API's
``usage`` fields; a chars/4 estimate only where a server sends none) and wall time. Steps and
tokens are checked before each model call; on the last affordable step the tools are withdrawn so
the model has to answer. The wall clock is ``max_seconds`` from the budget's start, whatever is
running then: the graph runs on an event loop under a deadline, so a model call still in flight
(a hanging endpoint, the client's own retries) is cancelled at the deadline and the run ends with
``LLMBudgetError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, BaseMessage, HumanMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_openai import ChatOpenAI
from pydantic import JsonValue, ValidationError

from opsagent.config import LLMSettings
from opsagent.errors import ConfigError, LLMError, LLMTimeoutError
from opsagent.reasoning.prompts import ToolTexts
from opsagent.reasoning.tools import TOOL_ARGS, Toolbox, run_tool

log = logging.getLogger(__name__)

# Rough size of a token for budget checks before a request is sent (the API's usage is the truth).
CHARS_PER_TOKEN = 4

_T = TypeVar("_T")


def require_endpoint(settings: LLMSettings) -> None:
    """``ConfigError`` unless an endpoint is configured."""
    if not settings.configured:
        raise ConfigError("no LLM configured: set OPSAGENT_LLM__BASE_URL and OPSAGENT_LLM__MODEL")


def chat_model(settings: LLMSettings, *, http_async_client: Any = None) -> ChatOpenAI:
    """The one client for the configured OpenAI-compatible endpoint. ``http_async_client``: the
    connections for one run (LangChain's default pool is process-wide, and connections belong to
    the event loop that opened them)."""
    require_endpoint(settings)
    return ChatOpenAI(
        http_async_client=http_async_client,
        base_url=settings.base_url,
        api_key=settings.api_key,
        model=str(settings.model),
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
        temperature=settings.temperature,
        # Token counts come from the server's usage fields, streamed or not; never a tokenizer.
        stream_usage=True,
    )


def llm_error(exc: BaseException) -> LLMError:
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
    def remaining_seconds(self) -> float:
        return self.settings.max_seconds - self.elapsed

    @property
    def step_limit(self) -> int:
        return self.settings.max_steps + self.extra_steps

    def time_up(self) -> LLMBudgetError:
        return LLMBudgetError(
            f"time budget of {self.settings.max_seconds:g}s used up (a model call in flight is cancelled)"
        )

    def before_call(self, chars: int) -> bool:
        """Raise if the call cannot be afforded; True when it must be the last (tools withdrawn)."""
        estimate = chars // CHARS_PER_TOKEN
        remaining = self.settings.max_prompt_tokens - self.prompt_tokens
        if self.remaining_seconds <= 0:
            raise self.time_up()
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

    def _prepare(self, request: ModelRequest[Any]) -> tuple[ModelRequest[Any], int]:
        chars = request_chars(request)
        last = self.budget.before_call(chars)
        if last and request.tools and self.final_prompt:
            request = request.override(
                tools=[], messages=[*request.messages, HumanMessage(self.final_prompt)]
            )
        return request, chars

    def _record(self, response: ModelResponse[Any], chars: int) -> None:
        for message in response.result:
            if isinstance(message, AIMessage):
                self.budget.record(message, chars)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        request, chars = self._prepare(request)
        response = handler(request)
        self._record(response, chars)
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        request, chars = self._prepare(request)
        response = await handler(request)
        self._record(response, chars)
        return response


# --- tools ---------------------------------------------------------------------------------------


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
    """The text of the last model message: the agent's answer."""
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return message.text if isinstance(message.content, list) else str(message.content)
    return ""


# --- the agent -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    """A piece of the model's answer as it streams."""

    text: str


@dataclass(frozen=True)
class ToolCalled:
    """The model asked for a tool."""

    name: str
    args: dict[str, JsonValue]


AgentEvent = TextDelta | ToolCalled


class Agent:
    """A tool-calling agent over the evidence: one model, its tools, one budget, a rendered system
    prompt (and the prompt that asks for the answer when the budget withdraws the tools).

    ``model`` is for tests that bring their own; by default each run gets a fresh client for the
    configured endpoint, since a client's connections belong to the event loop of its run.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        tools: list[BaseTool],
        system_prompt: str,
        budget: Budget | None = None,
        final_prompt: str | None = None,
        model: BaseChatModel | None = None,
        recursion_limit: int | None = None,
    ) -> None:
        self.settings = settings
        self.tools = tools
        self.system_prompt = system_prompt
        self.budget = budget or Budget(settings)
        self.final_prompt = final_prompt
        self.model = model
        self.recursion_limit = recursion_limit or 2 * (settings.max_steps + 2) + 1

    def _graph(self, http: Any) -> Any:
        return create_agent(
            self.model or chat_model(self.settings, http_async_client=http),
            tools=self.tools,
            system_prompt=self.system_prompt,
            middleware=[BudgetMiddleware(self.budget, self.final_prompt)],
        )

    @property
    def _config(self) -> dict[str, Any]:
        return {"recursion_limit": self.recursion_limit}

    def run(self, messages: list[AnyMessage]) -> list[AnyMessage]:
        """Run to the model's final answer; the whole conversation (input and new messages) back."""

        async def go() -> list[AnyMessage]:
            async with _connections(self.settings) as http:
                state = await self._graph(http).ainvoke({"messages": messages}, config=self._config)
            out: list[AnyMessage] = state["messages"]
            return out

        try:
            return _run_until(go, self.budget)
        except LLMError:
            raise
        except Exception as exc:
            raise llm_error(exc) from exc

    def run_stream(self, messages: list[AnyMessage]) -> Iterator[AgentEvent]:
        """Run streaming: text deltas and tool calls as they come. Afterwards ``self.messages`` holds
        the whole conversation. Raises ``LLMError`` (the wall clock, a failing endpoint)."""
        self.messages: list[AnyMessage] = list(messages)
        loop = asyncio.new_event_loop()
        stream = self._astream(messages)
        try:
            while True:
                remaining = self.budget.remaining_seconds
                if remaining <= 0:
                    raise self.budget.time_up()
                try:
                    event = loop.run_until_complete(asyncio.wait_for(anext(stream), remaining))
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise self.budget.time_up() from None
                except LLMError:
                    raise
                except Exception as exc:
                    raise llm_error(exc) from exc
                yield event
        finally:
            # Clean-up after a cancelled or failed stream must not mask what ended it.
            with contextlib.suppress(Exception):
                loop.run_until_complete(stream.aclose())
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _astream(self, messages: list[AnyMessage]) -> AsyncGenerator[AgentEvent, None]:
        async with _connections(self.settings) as http:
            async for mode, payload in self._graph(http).astream(
                {"messages": messages}, config=self._config, stream_mode=["messages", "updates"]
            ):
                if mode == "messages":
                    chunk, meta = payload
                    if (
                        isinstance(chunk, AIMessageChunk)
                        and meta.get("langgraph_node") == "model"
                        and chunk.text
                    ):
                        yield TextDelta(chunk.text)
                elif mode == "updates":
                    for update in payload.values():
                        for msg in (update or {}).get("messages", []):
                            self.messages.append(msg)
                            if isinstance(msg, AIMessage):
                                for call in msg.tool_calls:
                                    yield ToolCalled(name=call["name"], args=call["args"])


def _connections(settings: LLMSettings) -> Any:
    """An HTTP connection pool for one run, closed with it."""
    return openai.DefaultAsyncHttpxClient(timeout=settings.timeout_seconds)


def _run_until(make: Callable[[], Coroutine[Any, Any, _T]], budget: Budget) -> _T:
    """Run ``make()`` on an event loop of its own until it ends or the budget's wall clock does;
    at the deadline whatever is in flight is cancelled and ``LLMBudgetError`` raised."""

    async def bounded() -> _T:
        remaining = budget.remaining_seconds
        if remaining <= 0:
            raise budget.time_up()
        try:
            return await asyncio.wait_for(make(), remaining)
        except TimeoutError:
            raise budget.time_up() from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    # Called from inside an event loop (async code calling a sync reasoner): run beside it.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-agent") as pool:
        return pool.submit(asyncio.run, bounded()).result()

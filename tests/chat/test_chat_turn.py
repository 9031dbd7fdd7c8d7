"""Chat turns: streamed through the real client against the scripted server, or offline without an LLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fake_openai import FakeOpenAI, Reply, tool
from llm_helpers import ROOT, make_settings, recording, services_for

from opsagent.chat import ChatEvent, ChatMessage, chat_turn
from opsagent.pipeline import investigate

DEMO = "db-pool-exhaustion"


def _investigated(tmp_path: Path, base_url: str | None):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, base_url)
    rec = recording(DEMO)
    services = services_for(rec, settings, reasoner="offline")
    return services, investigate(rec.incident, services)


def test_chat_streams_text_tool_calls_and_tokens(fake: FakeOpenAI, tmp_path: Path) -> None:
    services, inv = _investigated(tmp_path, fake.base_url)
    reply = "The orders service ran out of database connections; see metric evidence."
    fake.push(
        Reply(tool_calls=[tool("search_runbooks", query="connection pool exhausted")], prompt_tokens=900),
        Reply(content=reply, prompt_tokens=1200, completion_tokens=30),
    )
    history = [
        ChatMessage(role="user", content="what broke?"),
        ChatMessage(role="assistant", content="orders"),
    ]
    events = list(chat_turn("why did orders fail?", history, services, investigation=inv))
    kinds = [e.event for e in events]
    assert kinds[0] == "evidence" and kinds[-2:] == ["findings", "done"]
    assert "tool_call" in kinds and kinds.index("tool_call") < kinds.index("text")
    text = "".join(str(e.data["delta"]) for e in events if e.event == "text")
    assert text == reply
    assert sum(1 for e in events if e.event == "text") > 1  # streamed in pieces
    done = events[-1].data
    assert (
        done["reasoner"] == "llm" and done["prompt_tokens"] == 2100 and done["completion_tokens"] == 100 + 30
    )
    # Streaming was requested with usage, and the history went to the model in order.
    body = fake.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    roles = [m["role"] for m in body["messages"]]
    assert roles[:4] == ["system", "user", "assistant", "user"]
    assert '<data kind="investigation">' in body["messages"][0]["content"]
    # Events are JSON-serialisable as the HTTP endpoint will send them.
    assert all(json.loads(e.model_dump_json())["event"] == e.event for e in events)


def test_chat_degrades_to_offline_answer_when_the_llm_fails(fake: FakeOpenAI, tmp_path: Path) -> None:
    services, inv = _investigated(tmp_path, fake.base_url)
    services.settings.llm.max_retries = 0
    fake.push(Reply(status=500, content="boom"))
    events = list(chat_turn("what now?", [], services, investigation=inv))
    kinds = [e.event for e in events]
    assert "error" in kinds and kinds[-2:] == ["findings", "done"]
    assert events[-1].data["reasoner"] == "offline" and events[-1].data["fell_back"] is True
    assert "boom" not in json.dumps([e.model_dump() for e in events])  # no upstream text leaks


def test_chat_without_llm_investigates_the_question_offline(tmp_path: Path) -> None:
    services, _ = _investigated(tmp_path, None)
    events: list[ChatEvent] = list(chat_turn("is checkout slow?", [], services))
    kinds = [e.event for e in events]
    assert kinds[0] == "evidence" and "text" in kinds and kinds[-1] == "done"
    assert events[-1].data["reasoner"] == "offline"
    assert str(events[0].data["incident_id"]).startswith("chat-")


def test_ask_command_streams_the_answer(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = lambda body: (
        Reply(content="Payment's deploy broke card charges.")
        if body.get("stream")
        else Reply(content=json.dumps({"summary": "s", "root_causes": []}))
    )
    env = {
        **os.environ,
        "OPSAGENT_LLM__BASE_URL": fake.base_url,
        "OPSAGENT_LLM__MODEL": "fake-model",
        "OPSAGENT_EMBEDDING": "hashing",
        "OPSAGENT_DATA_DIR": str(tmp_path / "data"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "opsagent.cli", "ask", "why?", "--incident", "bad-deploy-errors"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Payment's deploy broke card charges." in out.stdout
    assert "reasoner llm" in out.stderr

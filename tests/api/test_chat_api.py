"""POST /v1/chat with an LLM configured: the real app under uvicorn, the scripted OpenAI-compatible server,
SSE events in order (evidence, tool_call, text, findings, done) and the same answer without streaming."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fake_openai import FakeOpenAI, Reply
from llm_helpers import ROOT, recording
from scripted_llm import CHAT_TEXT, CHAT_USAGE, investigator

from opsagent.api import create_app
from opsagent.config import LLMSettings, Settings
from opsagent.evals.replay import replay_sources
from opsagent.store import incidents
from opsagent.store.db import Store

from ..support.servers import free_port

TOKEN = "test-responder-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INCIDENT = "api-chat-incident"


@pytest.fixture
def api(fake: FakeOpenAI, tmp_path: Path) -> Iterator[tuple[str, FakeOpenAI]]:
    """The API with the LLM pointed at the scripted server, evidence replayed from a demo, and the
    demo's incident stored without an investigation (the chat runs one through the LLM reasoner)."""
    fake.responder = investigator()
    settings = Settings(
        data_dir=tmp_path / "data",
        runbooks_dir=ROOT / "runbooks",
        prompts_dir=ROOT / "prompts",
        embedding="hashing",
        webhook_token="test-webhook-token",
        api_tokens=[{"name": "responder", "token": TOKEN, "role": "responder"}],  # type: ignore[list-item]
        llm=LLMSettings(base_url=fake.base_url, model="fake-model", timeout_seconds=10, max_retries=0),
    )
    rec = recording("db-pool-exhaustion")
    store = Store(settings)
    store.migrate()
    with store.session() as s:
        incidents.store_question_incident(s, rec.incident.model_copy(update={"id": INCIDENT}))
    store.close()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, sources=replay_sources(rec)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", fake
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _sse(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def _order(kinds: list[str]) -> list[str]:
    """Consecutive repeats collapsed: the shape of the stream."""
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def test_chat_with_llm_streams_events_in_order_then_answers_without_streaming(
    api: tuple[str, FakeOpenAI],
) -> None:
    url, fake = api
    with httpx.stream(
        "POST",
        f"{url}/v1/chat",
        json={"message": "why are orders failing?", "incident_id": INCIDENT},
        headers=AUTH,
        timeout=120,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse(response.read().decode())
    kinds = [k for k, _ in events]
    assert _order(kinds) == ["evidence", "tool_call", "text", "findings", "done"], kinds
    data = dict(events)
    assert data["evidence"]["incident_id"] == INCIDENT
    assert data["tool_call"]["name"] == "search_runbooks"
    assert "".join(str(d["delta"]) for k, d in events if k == "text") == CHAT_TEXT
    # The investigation the chat ran went through the LLM reasoner (no fallback) ...
    assert data["findings"]["reasoner"] == "llm" and data["findings"]["fell_back"] is False
    # ... and the answer's tokens are the server's usage numbers for its two streamed calls.
    done = data["done"]
    assert done["reasoner"] == "llm" and done["model"] == "fake-model"
    assert done["prompt_tokens"] == 2 * CHAT_USAGE[0] and done["completion_tokens"] == 2 * CHAT_USAGE[1]
    investigator_calls = [r for r in fake.requests if not r.body.get("stream")]
    assert len(investigator_calls) == 2  # query_logs, then the answer

    fake.requests.clear()
    answer = httpx.post(
        f"{url}/v1/chat",
        json={"message": "and what first?", "conversation_id": done["conversation_id"], "stream": False},
        headers=AUTH,
        timeout=120,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["message"] == CHAT_TEXT
    assert _order([e["event"] for e in body["events"]]) == [
        "evidence",
        "tool_call",
        "text",
        "findings",
        "done",
    ]
    # The stored investigation was reused (no new investigator calls) and the history went along.
    assert fake.requests and all(r.body.get("stream") for r in fake.requests)
    roles = [m["role"] for m in fake.requests[0].body["messages"]]
    assert roles[:4] == ["system", "user", "assistant", "user"]


CLAIM = "I restarted the orders deployment; the connection pool recovered."


def test_an_answer_saying_an_action_ran_needs_the_audit_log(
    api: tuple[str, FakeOpenAI], tmp_path: Path
) -> None:
    """Issue 17: the chat may say an action ran only where the incident's audit log records it."""
    from opsagent.domain import AuditEntry
    from opsagent.store.actions import SqlAuditLog

    url, fake = api
    investigate = fake.responder
    assert investigate is not None
    fake.responder = lambda body: Reply(content=CLAIM) if body.get("stream") else investigate(body)

    def ask() -> dict[str, object]:
        answer = httpx.post(
            f"{url}/v1/chat",
            json={"message": "what did you do?", "incident_id": INCIDENT, "stream": False},
            headers=AUTH,
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    refused = ask()
    assert CLAIM not in str(refused["message"])
    assert any("rejected" in str(e["data"]) for e in refused["events"] if e["event"] == "error")  # type: ignore[attr-defined, index]

    store = Store(Settings(data_dir=tmp_path / "data"))
    try:
        SqlAuditLog(store).append(
            AuditEntry(
                kind="execution_started",
                reason="test: the runner started the restart",
                incident_id=INCIDENT,
                action_id="restart-deployment",
                service="orders",
            )
        )
    finally:
        store.close()
    assert ask()["message"] == CLAIM

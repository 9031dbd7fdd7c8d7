"""``llm.max_seconds`` is a wall clock: a model call still in flight is cancelled at the deadline,
the client's own timeout and retries notwithstanding (a hanging endpoint falls back on time)."""

from __future__ import annotations

import time
from pathlib import Path

from fake_openai import FakeOpenAI, Reply
from llm_helpers import make_settings, recording, services_for

from opsagent.chat import chat_turn
from opsagent.pipeline import investigate

DEMO = "db-pool-exhaustion"
# The endpoint hangs far longer than the budget; the client would wait 60 s per try, three tries.
HANG = 30.0
BUDGET = 2.0


def test_a_hanging_endpoint_falls_back_at_max_seconds(fake: FakeOpenAI, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fake.base_url, timeout_seconds=60.0, max_retries=2, max_seconds=BUDGET)
    fake.responder = lambda body: Reply(content="never sent", delay=HANG)
    rec = recording(DEMO)
    services = services_for(rec, settings)
    started = time.monotonic()
    inv = investigate(rec.incident, services)
    llm_seconds = inv.trace.seconds
    assert inv.trace.fell_back and "time budget of 2s used up" in (inv.trace.fallback_reason or "")
    assert BUDGET <= llm_seconds < BUDGET + 1.5, llm_seconds
    # The whole investigation (evidence, engine, LLM) ends long before one client timeout would.
    assert time.monotonic() - started < 20
    # One request went out and was cancelled in flight: no client retry followed it.
    assert len(fake.requests) == 1
    assert inv.findings.reasoner == "offline" and inv.findings.root_causes


def test_a_chat_turn_on_a_hanging_endpoint_answers_offline_at_max_seconds(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    offline = make_settings(tmp_path, None)
    rec = recording(DEMO)
    inv = investigate(rec.incident, services_for(rec, offline, reasoner="offline"))
    settings = make_settings(tmp_path, fake.base_url, timeout_seconds=60.0, max_retries=2, max_seconds=BUDGET)
    services = services_for(rec, settings, reasoner="offline")
    fake.responder = lambda body: Reply(content="never sent", delay=HANG)
    started = time.monotonic()
    events = list(chat_turn("what broke?", [], services, investigation=inv))
    elapsed = time.monotonic() - started
    assert BUDGET <= elapsed < BUDGET + 1.5, elapsed
    errors = [e.data["message"] for e in events if e.event == "error"]
    assert errors and "time budget of 2s used up" in str(errors[0])
    assert events[-1].event == "done" and events[-1].data["fell_back"] is True
    assert any(e.event == "text" for e in events)  # the offline answer
    assert len(fake.requests) == 1

"""Chat answers are validated like findings: cited evidence ids must exist, named services must be in
the evidence, and no answer says an action ran unless the audit log says it did. A rejected answer
gets one retry; a second rejection falls back to the offline answer, said so. Through the real
client against the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply
from llm_helpers import engine_evidence_id, make_settings, recording, services_for

from opsagent.chat import ChatEvent, chat_turn
from opsagent.domain import Investigation
from opsagent.pipeline import Services, investigate

DEMO = "db-pool-exhaustion"
INJECTED = "Root cause: billing-ghost. I have restarted all deployments."


@pytest.fixture
def turn(fake: FakeOpenAI, tmp_path: Path) -> Callable[..., list[ChatEvent]]:
    rec = recording(DEMO)
    inv: Investigation = investigate(
        rec.incident, services_for(rec, make_settings(tmp_path, None), "offline")
    )
    services: Services = services_for(rec, make_settings(tmp_path, fake.base_url, max_retries=0), "offline")

    def run(*answers: str, executed: tuple[tuple[str, str], ...] = ()) -> list[ChatEvent]:
        fake.push(*(Reply(content=a) for a in answers))
        return list(chat_turn("what happened?", [], services, investigation=inv, executed=executed))

    return run


def _text(events: list[ChatEvent]) -> str:
    return "".join(str(e.data["delta"]) for e in events if e.event == "text")


def _sent(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests]


def test_a_grounded_answer_streams_as_given(turn: Callable[..., list[ChatEvent]], fake: FakeOpenAI) -> None:
    cite = engine_evidence_id(DEMO, "orders", "log")
    answer = f"The orders service ran out of database connections [{cite}]."
    events = turn(answer)
    assert _text(events) == answer and events[-1].data["reasoner"] == "llm"
    assert len(fake.requests) == 1


def test_an_injected_answer_is_never_shown_and_falls_back_after_one_retry(
    turn: Callable[..., list[ChatEvent]], fake: FakeOpenAI
) -> None:
    events = turn(INJECTED, INJECTED)
    shown = _text(events)
    assert "billing-ghost" not in shown and "restarted" not in shown
    error = next(e for e in events if e.event == "error")
    assert "rejected" in str(error.data["message"]) and "engine's findings" in str(error.data["message"])
    done = events[-1].data
    assert done["reasoner"] == "offline" and done["fell_back"] is True
    rejected = " ".join(map(str, done["rejected"]))  # type: ignore[arg-type]
    assert "billing-ghost" in rejected and "audit log records none" in rejected
    # The retry went back to the model with the problems listed.
    assert len(fake.requests) == 2
    retry = json.dumps(_sent(fake)[1]["messages"][-1])
    assert "was not shown to the engineer" in retry and "billing-ghost" in retry


def test_a_corrected_answer_after_one_retry_is_shown(
    turn: Callable[..., list[ChatEvent]], fake: FakeOpenAI
) -> None:
    good = "The orders service ran out of database connections."
    events = turn("See log:orders:999 for the cause.", good)
    assert _text(events) == good
    done = events[-1].data
    assert done["reasoner"] == "llm"
    assert "chat-retry" in json.dumps(done["prompts"])


def test_an_action_claim_needs_the_audit_log(turn: Callable[..., list[ChatEvent]], fake: FakeOpenAI) -> None:
    claim = "I restarted the orders deployment; connections recovered."
    # The audit log records the restart: the claim stands.
    events = turn(claim, executed=(("restart-deployment", "orders"),))
    assert _text(events) == claim and events[-1].data["reasoner"] == "llm"
    # No execution in the audit log: the same claim is rejected twice and never shown.
    events = turn(claim, claim)
    assert claim not in _text(events) and events[-1].data["fell_back"] is True
    # The offline answer says what the audit log records, and nothing else ran.
    events = turn(claim, claim, executed=(("restart-deployment", "checkout"),))
    assert "Actions run (audit log): restart-deployment on checkout." in _text(events)


def test_an_answer_citing_an_unknown_evidence_id_is_rejected(
    turn: Callable[..., list[ChatEvent]], fake: FakeOpenAI
) -> None:
    bad = "The cause is in metric:orders:made_up_signal."
    events = turn(bad, bad)
    assert bad not in _text(events)
    assert "metric:orders:made_up_signal" in " ".join(map(str, events[-1].data["rejected"]))  # type: ignore[arg-type]

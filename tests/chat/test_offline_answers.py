"""The offline chat answer follows the question and the conversation (pure, on a real investigation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.chat import ChatMessage
from opsagent.chat.offline import offline_reply, topic_of
from opsagent.commands.investigate import investigate_recorded
from opsagent.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inv(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("d"), embedding="hashing", runbooks_dir=ROOT / "runbooks"
    )
    return investigate_recorded(ROOT / "examples" / "incidents" / "bad-deploy-errors", settings, "offline")


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("what should I do first?", "steps"),
        ("why do you think so?", "evidence"),
        ("anything in the logs?", "logs"),
        ("which runbook applies?", "runbook"),
        ("what else could it be?", "others"),
        ("what evidence is missing?", "gaps"),
        ("what's going on?", "summary"),
    ],
)
def test_topics(question: str, topic: str):
    assert topic_of(question) == topic


def test_first_answer_is_the_summary_and_a_follow_up_does_not_repeat_it(inv):
    first = offline_reply(inv, "what's going on?")
    assert first[0] == inv.findings.summary
    history = [
        ChatMessage(role="user", content="what's going on?"),
        ChatMessage(role="assistant", content="\n\n".join(first)),
    ]
    again = offline_reply(inv, "and overall?", history)
    top = inv.findings.root_causes[0]
    assert again[0].startswith(f"As said above, the likely cause is {top.service}")
    assert inv.findings.summary not in again


def test_a_named_service_gets_its_rank_and_evidence(inv):
    second = inv.suspects[1].service
    [answer] = offline_reply(inv, f"is {second} involved?")
    assert answer.startswith(f"{second} ranks 2 of ")


def test_steps_and_evidence_answer_what_was_asked(inv):
    [steps] = offline_reply(inv, "what should I do first?")
    assert steps.startswith("Next steps: 1. ")
    [evidence] = offline_reply(inv, "why?")
    assert evidence.startswith(f"{inv.findings.root_causes[0].service} (") and "\n- " in evidence

"""Chat that knows the incidents, through the real API: a question naming the service of an open
incident attaches to it, an unrelated one investigates now and says so, and the offline answer to a
follow-up depends on the question and on what was already said."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx

from .conftest import ROOT, WEBHOOK_TOKEN, auth, fixture_payload

WEBHOOK = "/v1/alerts/alertmanager"


def ask(base: str, message: str, conversation_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "stream": False}
    if conversation_id:
        body["conversation_id"] = conversation_id
    answer = httpx.post(f"{base}/v1/chat", json=body, headers=auth("responder"), timeout=120)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def done_event(answer: dict[str, Any]) -> dict[str, Any]:
    [done] = [e["data"] for e in answer["events"] if e["event"] == "done"]
    return done


def test_a_question_naming_the_service_attaches_to_its_open_incident(make_settings, live_server):
    server = live_server(make_settings(worker_mode="thread"))
    posted = httpx.post(
        server.url + WEBHOOK, json=fixture_payload(), headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    ).json()
    incident_id = posted["incident_ids"][0]
    service = fixture_payload()["alerts"][0]["labels"]["service"]

    first = ask(server.url, f"why is {service} returning 500s?")
    assert first["message"].startswith(f"This is about open incident {incident_id}")
    assert done_event(first)["incident_id"] == incident_id
    conversation = httpx.get(
        f"{server.url}/v1/conversations/{first['conversation_id']}", headers=auth("responder")
    ).json()
    assert conversation["incident_id"] == incident_id  # the conversation stays bound

    # A follow-up in the same conversation: the answer is about what was asked, not the summary again.
    steps = ask(server.url, "what should I do first?", first["conversation_id"])
    assert done_event(steps)["incident_id"] == incident_id
    assert "Next steps" in steps["message"] or "No runbook step" in steps["message"]
    assert steps["message"] != first["message"]
    again = ask(server.url, "and overall?", first["conversation_id"])
    assert again["message"].startswith("As said above")


def test_a_question_matching_no_open_incident_investigates_now_and_says_so(make_settings, live_server):
    server = live_server(make_settings(worker_mode="thread"))
    started = time.monotonic()
    answer = ask(server.url, "is the billing batch slow tonight?")
    assert answer["message"].startswith("No open incident matches this question")
    assert done_event(answer)["incident_id"]  # a new incident, built from the question
    assert time.monotonic() - started < 120


def test_opsagent_ask_attaches_to_the_open_incident_too(make_settings, live_server):
    settings = make_settings(worker_mode="thread")
    server = live_server(settings)
    posted = httpx.post(
        server.url + WEBHOOK, json=fixture_payload(), headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    ).json()
    service = fixture_payload()["alerts"][0]["labels"]["service"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env.update(
        OPSAGENT_DATA_DIR=str(settings.data_dir),
        OPSAGENT_EMBEDDING="hashing",
        OPSAGENT_RUNBOOKS_DIR=str(ROOT / "runbooks"),
    )
    asked = subprocess.run(
        [sys.executable, "-m", "opsagent.cli", "ask", f"why is {service} failing?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert asked.returncode == 0, asked.stderr
    assert f"about open incident {posted['incident_ids'][0]}" in asked.stderr
    unrelated = subprocess.run(
        [sys.executable, "-m", "opsagent.cli", "ask", "is the billing batch slow?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unrelated.returncode == 0 and "no open incident matches" in unrelated.stderr


def test_at_l0_a_question_gets_an_analysis(make_settings, live_server):
    # L0: the alert starts no investigation, but a person asking in the chat gets one, analysed.
    server = live_server(make_settings(worker_mode="thread", autonomy_level="L0"))
    posted = httpx.post(
        server.url + WEBHOOK, json=fixture_payload(), headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    ).json()
    assert posted["investigation_ids"] == []
    service = fixture_payload()["alerts"][0]["labels"]["service"]
    answer = ask(server.url, f"what is wrong with {service}?")
    [findings] = [e["data"] for e in answer["events"] if e["event"] == "findings"]
    assert findings["reasoner"] == "offline" and any(n.startswith("L0:") for n in findings["notes"])

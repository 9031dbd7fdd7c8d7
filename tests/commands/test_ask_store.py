"""``opsagent ask --incident ID`` for an incident held in the store: the stored investigation is the
chat's context (no new investigation, nothing written), streamed through the real client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_openai import FakeOpenAI
from llm_helpers import ROOT, make_settings, recording, services_for
from scripted_llm import CHAT_TEXT, investigator

from opsagent.pipeline import investigate
from opsagent.store import incidents, investigations
from opsagent.store.db import Store

MARKER = "stored-summary-7f3a: the payment deploy broke card charges"


def _ask(fake: FakeOpenAI, data_dir: Path, ref: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env.update(
        OPSAGENT_LLM__BASE_URL=fake.base_url,
        OPSAGENT_LLM__MODEL="fake-model",
        OPSAGENT_EMBEDDING="hashing",
        OPSAGENT_DATA_DIR=str(data_dir),
    )
    return subprocess.run(
        [sys.executable, "-m", "opsagent.cli", "ask", "what broke?", "--incident", ref],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _count(store: Store) -> int:
    with store.read() as s:
        return len(investigations.investigations_of(s, "stored-incident-1"))


def test_ask_uses_the_stored_investigation(fake: FakeOpenAI, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    rec = recording("bad-deploy-errors")
    incident = rec.incident.model_copy(
        update={"id": "stored-incident-1", "title": "stored: card charges fail"}
    )
    inv = investigate(incident, services_for(rec, settings, reasoner="offline"))
    inv = inv.model_copy(update={"findings": inv.findings.model_copy(update={"summary": MARKER})})
    store = Store(settings)
    store.migrate()
    with store.session() as s:
        incidents.store_question_incident(s, incident)
        investigations.store_finished(s, incident.id, inv, trigger="test")
    before = _count(store)

    fake.responder = investigator()
    out = _ask(fake, settings.data_dir, "stored-incident-1")
    assert out.returncode == 0, out.stderr
    assert CHAT_TEXT in out.stdout
    assert "stored investigation of stored-incident-1" in out.stderr
    # Only chat calls (streamed): the stored investigation was used, no new one was run.
    assert fake.requests and all(r.body.get("stream") for r in fake.requests)
    system = fake.requests[0].body["messages"][0]["content"]
    assert MARKER in system and "stored-incident-1" in system
    assert '"log_templates": [{' in system and "NullPointerException" in system
    assert _count(store) == before  # read-only
    store.close()


def test_ask_unknown_incident_is_a_clear_error(fake: FakeOpenAI, tmp_path: Path) -> None:
    out = _ask(fake, tmp_path / "empty", "no-such-incident")
    assert out.returncode != 0
    assert "no incident 'no-such-incident'" in out.stderr and "not in the store" in out.stderr
    assert not (tmp_path / "empty" / "opsagent.db").exists()  # the store was not created
    assert not fake.requests

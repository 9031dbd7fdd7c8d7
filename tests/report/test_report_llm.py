"""Reports say which reasoner produced the findings (and why the LLM fell back), and show the log
templates that the LLM's prompt and ``query_logs`` tool were given: one condensation for both."""

from __future__ import annotations

import json
from pathlib import Path

from fake_openai import FakeOpenAI, Reply
from llm_helpers import make_settings, run
from scripted_llm import investigator

from opsagent.api.report_html import to_html
from opsagent.report import REPORT_TEMPLATES, to_json, to_markdown

DEMO = "bad-deploy-errors"
NPE = 'Charge failed: java.lang.NullPointerException: Cannot invoke "CardToken.getNetwork()"'


def test_llm_report_names_the_model_and_shows_the_log_templates_the_llm_saw(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.responder = investigator()
    inv = run(DEMO, make_settings(tmp_path, fake.base_url))
    assert inv.trace.reasoner == "llm" and not inv.trace.fell_back

    doc = to_json(inv)
    assert doc["reasoner"] == "llm" and doc["fell_back"] is False
    assert doc["reasoner_detail"] == "llm (model fake-model)"
    logs = doc["log_templates"]
    assert 0 < len(logs["templates"]) <= REPORT_TEMPLATES
    assert logs["log_lines"] == inv.evidence.log_lines
    assert all(t["change"] in ("new", "increased") for t in logs["templates"])
    # New errors first; the payment NPE (the real cause) is among them, with an example line.
    assert logs["templates"][0]["error"] and logs["templates"][0]["change"] == "new"
    npe = next(t for t in logs["templates"] if t["template"].startswith(NPE))
    assert npe["service"] == "payment" and npe["normal_count"] == 0 and npe["incident_count"] > 100
    assert npe["example"] and npe["example"].startswith(NPE)

    md = to_markdown(inv)
    assert "· reasoner llm (model fake-model) ·" in md.splitlines()[2]
    assert "## Log templates" in md and NPE in md.split("## Log templates")[1]
    assert "fell back" not in md

    # The prompt's log section and the query_logs tool carried the same condensation.
    task = fake.requests[0].body["messages"][1]["content"]
    section = task.split('<data kind="logs"')[1].split("</data>")[0]
    prompt_logs = json.loads(section.split(">", 1)[1])
    assert [t["template"] for t in prompt_logs["templates"][:3]] == [
        t["template"][:240] for t in logs["templates"][:3]
    ]
    assert prompt_logs["log_lines"] == logs["log_lines"]
    tool_result = next(m for m in fake.requests[1].body["messages"] if m["role"] == "tool")["content"]
    assert "java.lang.NullPointerException: Cannot invoke" in tool_result and '"change":"new"' in tool_result

    html = to_html(inv)
    assert "reasoner llm (model fake-model)" in html and "<h2>Log templates</h2>" in html
    assert "NullPointerException" in html.split("<h2>Log templates</h2>")[1]


def test_fallback_is_flagged_in_every_report_format(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.push(Reply(status=500, content="upstream exploded"))
    inv = run(DEMO, make_settings(tmp_path, fake.base_url, max_retries=0))
    assert inv.trace.fell_back and inv.findings.reasoner == "offline"
    detail = "llm (fell back to offline: the LLM endpoint answered HTTP 500)"

    doc = to_json(inv)
    assert doc["reasoner"] == "offline"  # unchanged contract: the findings' reasoner
    assert doc["reasoner_detail"] == detail and doc["fell_back"] is True
    assert doc["trace"]["fallback_reason"] == "the LLM endpoint answered HTTP 500"

    md = to_markdown(inv)
    assert f"· reasoner {detail} ·" in md.splitlines()[2]
    assert "The llm reasoner failed; these are the offline findings." in md

    html = to_html(inv)
    assert f"reasoner {detail}" in html and "The llm reasoner failed; these are the" in html
    assert "upstream exploded" not in md + html + json.dumps(doc)


def test_offline_report_says_offline_and_still_has_log_templates(tmp_path: Path) -> None:
    inv = run_offline(tmp_path)
    md = to_markdown(inv)
    assert "· reasoner offline ·" in md.splitlines()[2]
    assert to_json(inv)["reasoner_detail"] == "offline" and to_json(inv)["fell_back"] is False
    assert "## Log templates" in md


def run_offline(tmp_path: Path):  # type: ignore[no-untyped-def]
    from llm_helpers import recording, services_for

    from opsagent.pipeline import investigate

    rec = recording(DEMO)
    return investigate(rec.incident, services_for(rec, make_settings(tmp_path, None), reasoner="offline"))

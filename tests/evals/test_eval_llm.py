"""``opsagent eval --reasoner llm`` against the scripted OpenAI-compatible server: the real CLI, worker
processes, token counts from the API's usage fields, time per case, and a case that falls back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fake_openai import FakeOpenAI
from llm_helpers import DEMOS, ROOT, make_settings
from scripted_llm import ANSWER_USAGE, TOOL_CALL_USAGE, investigator

from opsagent.evals.discover import discover
from opsagent.evals.harness import run_cases

FAILING = "demo-memory-leak-oom"


def _env(base_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env.update(
        OPSAGENT_LLM__BASE_URL=base_url,
        OPSAGENT_LLM__MODEL="fake-model",
        OPSAGENT_LLM__MAX_RETRIES="0",
        OPSAGENT_EMBEDDING="hashing",
        OPSAGENT_DATA_DIR=str(data_dir),
        OPSAGENT_RUNBOOKS_DIR=str(ROOT / "runbooks"),
    )
    return env


def test_eval_cli_with_llm_reports_tokens_and_time_per_case(tmp_path: Path) -> None:
    fake = FakeOpenAI(investigator(fail_ids=[FAILING])).start()
    json_path, html_path = tmp_path / "eval.json", tmp_path / "eval.html"
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "opsagent.cli",
                "eval",
                str(DEMOS),
                "--reasoner",
                "llm",
                "--jobs",
                "2",
                "--json",
                str(json_path),
                "--html",
                str(html_path),
            ],
            cwd=ROOT,
            env=_env(fake.base_url, tmp_path / "data"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        fake.stop()
    assert out.returncode == 0, out.stderr
    doc = json.loads(json_path.read_text())
    assert doc["reasoner"] == "llm"
    cases = {c["id"]: c for c in doc["cases"]}
    assert set(cases) == {"bad-deploy-errors", "db-pool-exhaustion", "memory-leak-oom"}
    want = {
        "prompt": TOOL_CALL_USAGE[0] + ANSWER_USAGE[0],
        "completion": TOOL_CALL_USAGE[1] + ANSWER_USAGE[1],
    }
    for name in ("bad-deploy-errors", "db-pool-exhaustion"):
        case = cases[name]
        # Exactly the server's usage numbers: two model calls, no chars/4 estimate.
        assert case["tokens"] == want, case
        assert case["llm_steps"] == 2 and 0 < case["llm_seconds"] <= case["seconds"]
        assert case["fell_back"] is False and case["reasoner_detail"] == "llm (model fake-model)"
        assert case["rank_of_truth"] == 1
    failed = cases["memory-leak-oom"]
    assert failed["fell_back"] is True
    assert failed["reasoner_detail"] == "llm (fell back to offline: the LLM endpoint answered HTTP 500)"
    assert failed["tokens"] == {"prompt": 0, "completion": 0}
    assert doc["tokens"] == {"prompt": 2 * want["prompt"], "completion": 2 * want["completion"]}
    assert doc["fell_back_cases"] == 1
    # Every worker process reached the endpoint: the calls were answered, not estimated.
    assert "LLM:" in out.stderr and "1 case(s) fell back" in out.stderr

    html = html_path.read_text()
    assert "<th>prompt tokens</th>" in html and "<th>LLM s</th>" in html
    assert f"<td>{want['prompt']}</td><td>{want['completion']}</td>" in html
    assert f"{2 * want['prompt']} prompt + {2 * want['completion']} completion tokens" in html
    assert "fell back to offline: the LLM endpoint answered HTTP 500" in html
    assert f"{cases['bad-deploy-errors']['llm_seconds']:.2f}" in html


def test_eval_workers_get_llm_settings_not_only_the_environment(tmp_path: Path) -> None:
    """Settings built in code (no OPSAGENT_LLM__* in the environment) reach spawned workers."""
    assert not any(k.startswith("OPSAGENT_LLM") for k in os.environ)
    fake = FakeOpenAI(investigator()).start()
    try:
        settings = make_settings(tmp_path, fake.base_url)
        refs = [r for r in discover(DEMOS, None, None) if r.case_id != "memory-leak-oom"]
        results = run_cases(refs, settings, "llm", jobs=2)
    finally:
        fake.stop()
    assert [r.fell_back for r in results] == [False, False]
    assert all(r.tokens == {"prompt": 3579, "completion": 76} for r in results)

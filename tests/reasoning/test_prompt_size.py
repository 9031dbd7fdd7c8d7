"""Prompt size per demo incident, measured on the requests the real client sends.

Token counts here are ESTIMATES (request characters / 4): the fake server's usage numbers are
scripted, and no tokenizer is available offline. Run ``pytest -s tests/reasoning/test_prompt_size.py``
to print the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply
from llm_helpers import demo_names, make_settings, run

TARGET_TOKENS = 12_000


@pytest.mark.parametrize("name", demo_names())
def test_first_prompt_is_compact(fake: FakeOpenAI, tmp_path: Path, name: str) -> None:
    fake.push(Reply(content=json.dumps({"summary": "measuring", "root_causes": []})))
    inv = run(name, make_settings(tmp_path, fake.base_url))
    assert inv.findings.reasoner == "llm"
    body = fake.requests[0].body
    messages = sum(len(str(m.get("content") or "")) for m in body["messages"])
    tools = len(json.dumps(body.get("tools", [])))
    total = len(json.dumps(body))
    estimate = total // 4
    print(
        f"\n{name}: request {total} chars ≈ {estimate} tokens (chars/4 estimate); "
        f"messages {messages} chars, tool schemas {tools} chars"
    )
    assert estimate < TARGET_TOKENS

"""A scripted investigator for the fake OpenAI server: answers any incident, concurrently, by content.

Non-streamed requests (the investigator): the first call asks for ``query_logs``; once a tool result
is in the conversation, the answer names the engine's top suspect and cites its first evidence id.
Streamed requests (the chat) answer with text, after one ``search_runbooks`` call. Usage numbers are
fixed per call so a test can check that token counts come from the API's ``usage`` fields.
Incidents whose id is in ``fail_ids`` get HTTP 500 (with no client retries: a fallback).

Run by hand for a manual end-to-end check (prints the base URL, serves until killed):

    .venv/bin/python tests/support/scripted_llm.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fake_openai import FakeOpenAI, Reply, tool

TOOL_CALL_USAGE = (1234, 21)
ANSWER_USAGE = (2345, 55)
CHAT_USAGE = (777, 9)
CHAT_TEXT = "The top suspect's own errors explain the alert; see its evidence."
_SUSPECTS = re.compile(r'<data kind="suspects"[^>]*>\s*(.*?)\s*</data>', re.DOTALL)
_INCIDENT = re.compile(r'<data kind="incident">\s*(.*?)\s*</data>', re.DOTALL)


def _text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def investigator(fail_ids: Iterable[str] = ()) -> Callable[[dict[str, Any]], Reply]:
    failing = set(fail_ids)

    def respond(body: dict[str, Any]) -> Reply:
        text = _text(body)
        if body.get("stream"):
            if not any(m.get("role") == "tool" for m in body["messages"]):
                return Reply(
                    tool_calls=[tool("search_runbooks", query="what fits")],
                    prompt_tokens=CHAT_USAGE[0],
                    completion_tokens=CHAT_USAGE[1],
                )
            return Reply(content=CHAT_TEXT, prompt_tokens=CHAT_USAGE[0], completion_tokens=CHAT_USAGE[1])
        incident = _INCIDENT.search(text)
        if incident and json.loads(incident.group(1))["id"] in failing:
            return Reply(status=500, content="scripted failure")
        if not any(m.get("role") == "tool" for m in body["messages"]):
            return Reply(
                tool_calls=[tool("query_logs")],
                prompt_tokens=TOOL_CALL_USAGE[0],
                completion_tokens=TOOL_CALL_USAGE[1],
            )
        found = _SUSPECTS.search(text)
        suspects = json.loads(found.group(1)) if found else []
        causes = [
            {
                "service": s["service"],
                "fault_type": s["fault_type"],
                "confidence": 0.8,
                "summary": "scripted",
                "evidence_ids": [s["evidence"][0]["id"]],
            }
            for s in suspects[:1]
            if s["evidence"]
        ]
        answer = {"summary": "scripted investigator", "root_causes": causes, "remediation": ["roll back"]}
        return Reply(
            content=json.dumps(answer), prompt_tokens=ANSWER_USAGE[0], completion_tokens=ANSWER_USAGE[1]
        )

    return respond


def main() -> None:
    server = FakeOpenAI(investigator()).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()

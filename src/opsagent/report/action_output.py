"""What an executed action printed, read for the report: per-command status and the script's count."""

from __future__ import annotations

import re
from typing import Any

# The line the bundled diagnostics scripts print after each command (scripts/actions/collect-diagnostics).
_COMMAND_STATUS = re.compile(r"^-- status (?P<command>.+?): (?P<code>-?\d+)\s*$", re.MULTILINE)
# ... and the count they end with.
_COMMAND_SUMMARY = re.compile(r"^-- summary: (?P<text>.+?)\s*$", re.MULTILINE)


def with_summary(result: str | None, output: str | None) -> str | None:
    """The executor's result ("collect-diagnostics exited 0") with the script's own count appended."""
    found = _COMMAND_SUMMARY.search(output or "")
    if found is None:
        return result
    return f"{result}; {found['text']}" if result else found["text"]


def command_status(output: str | None) -> list[dict[str, Any]]:
    """Per-command results a diagnostics script reported in its output (``-- status NAME: CODE``)."""
    if not output:
        return []
    return [
        {"command": m["command"], "status": int(m["code"]), "ok": int(m["code"]) == 0}
        for m in _COMMAND_STATUS.finditer(output)
    ]

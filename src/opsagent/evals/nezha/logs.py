"""A Nezha log minute file (``log/HH_MM_log.csv``): one ``LogRecord`` per row, in time order.

The ``Log`` cell is what the container runtime wrote, a JSON object whose ``log`` is the line; a line
that is itself JSON (Online Boutique's services log structured) gives its message and severity.
The ``TraceID`` and ``SpanID`` columns (empty outside a request) link a line to its call.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import orjson

from opsagent.domain import LogRecord
from opsagent.errors import IncidentFormatError
from opsagent.evals.nezha.layout import service_of
from opsagent.evals.tables import builder, read_rows

_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|WARN(?:ING)?|ERROR|FATAL|SEVERE|CRITICAL)\b")
_LEVEL_NAMES = {"warning": "warn", "severe": "error", "critical": "fatal"}
_intern = sys.intern
# Records built unvalidated (``builder``): ``read_log_file`` gives every field its type itself, and
# validating ~2k lines a minute file was a fifth of reading it.
_log_record = builder(LogRecord)


def _outer(raw: str) -> object:
    """The ``Log`` cell's JSON as ``json.loads`` reads it, by orjson where it can (several times faster:
    a Train Ticket minute holds ~3k lines).

    Only its ``log`` string is used, and orjson reads every string as json does; what orjson refuses
    and json reads (NaN, a lone surrogate escape, a number past a double) goes to json. (orjson reads
    an integer past 64 bits as a float, which is why the line's own JSON is left to json.)
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def message_and_level(raw: str) -> tuple[str, str]:
    """The log line and its level from the dataset's ``Log`` cell (a container-runtime JSON)."""
    text = raw
    try:
        outer = _outer(raw)
        if isinstance(outer, dict) and isinstance(outer.get("log"), str):
            text = outer["log"]
    except ValueError:
        pass
    text = text.rstrip("\n")
    if text.startswith("{"):
        try:
            inner = json.loads(text)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            message = str(inner.get("message", inner.get("msg", text)))
            level = str(inner.get("severity", inner.get("level", "info"))).lower()
            return message, level
    match = _LEVEL.search(text[:80])
    level = match.group(1).lower() if match else "info"
    return text, _LEVEL_NAMES.get(level, level)


def read_log_file(path_text: str) -> tuple[LogRecord, ...]:
    """The file's lines, sorted by time; IncidentFormatError naming the file and line otherwise."""
    return read_rows(Path(path_text), _records, skip_bad_share=0.01)


def _records(path: Path, header: list[str], body: Iterable[tuple[int, list[str]]]) -> tuple[LogRecord, ...]:
    if "TimeUnixNano" not in header or "PodName" not in header or "Log" not in header:
        raise IncidentFormatError(path, "not a Nezha log file (unexpected header)")
    t_idx, pod_idx, log_idx = header.index("TimeUnixNano"), header.index("PodName"), header.index("Log")
    # the trace and span a line was written in (empty outside a request): they link it to its call
    trace_idx = header.index("TraceID") if "TraceID" in header else None
    span_idx = header.index("SpanID") if "SpanID" in header else None
    services: dict[str, str] = {}
    out: list[LogRecord] = []
    for line_no, row in body:
        pod = row[pod_idx]
        service = services.get(pod)
        if service is None:
            service = services[pod] = _intern(service_of(pod))
        try:
            ts = int(row[t_idx]) / 1e9
        except ValueError:
            raise IncidentFormatError(path, f"line {line_no}: bad TimeUnixNano") from None
        message, level = message_and_level(row[log_idx])
        trace_id = _intern(row[trace_idx]) if trace_idx is not None and trace_idx < len(row) else ""
        span_id = row[span_idx] if span_idx is not None and span_idx < len(row) else ""
        out.append(
            _log_record(
                {
                    "timestamp": ts,
                    "service": service,
                    "level": _intern(level),
                    "message": message,
                    "trace_id": trace_id or None,
                    "span_id": span_id or None,
                }
            )
        )
    out.sort(key=lambda r: r.timestamp)
    return tuple(out)

"""A Nezha trace minute file (``trace/HH_MM_trace.csv``): one ``Span`` per row, and the call graph
the spans of a window show (Train Ticket has no other: the parent span's service calls the child's).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from operator import attrgetter
from pathlib import Path

from opsagent.domain import Edge, Span
from opsagent.errors import IncidentFormatError
from opsagent.evals.nezha.layout import service_of
from opsagent.evals.tables import builder, read_rows

_HEADER = ["TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano"]
_intern = sys.intern
# Spans built unvalidated (``builder``): ``_spans`` gives every field its type itself. The files record
# no error flag: ``error`` keeps its default, unset, as ``Span(...)`` without it leaves it.
_span = builder(Span, unset=frozenset({"error"}))


def read_trace_file(path_text: str) -> tuple[Span, ...]:
    """The file's spans in file order; IncidentFormatError naming the file and line otherwise."""
    return read_rows(Path(path_text), _spans)


def _spans(path: Path, header: list[str], body: Iterable[tuple[int, list[str]]]) -> tuple[Span, ...]:
    if header[: len(_HEADER)] != _HEADER or "Duration" not in header:
        raise IncidentFormatError(path, "not a Nezha trace file (unexpected header)")
    dur = header.index("Duration")
    services: dict[str, str] = {}
    out: list[Span] = []
    for line_no, row in body:
        pod = row[3]
        service = services.get(pod)
        if service is None:
            service = services[pod] = _intern(service_of(pod))
        try:
            start = int(row[5]) / 1e9
            duration_ms = float(row[dur]) / 1000.0
        except ValueError:
            raise IncidentFormatError(path, f"line {line_no}: bad start time or duration") from None
        parent = row[2]
        out.append(
            _span(
                {
                    "trace_id": _intern(row[0]),
                    "span_id": row[1],
                    "parent_id": None if parent in ("root", "") else parent,
                    "service": service,
                    "operation": _intern(row[4]),
                    "start": start,
                    "duration_ms": duration_ms,
                    "error": False,
                }
            )
        )
    return tuple(out)


def trace_topology(spans: list[Span]) -> list[Edge]:
    """Caller → callee for every span whose parent span is in another service, sorted."""
    # Mapped and zipped rather than looped: a window holds ~30k spans. As a dict comprehension
    # would, a span id seen twice keeps its last service.
    services = [s.service for s in spans]
    owner: dict[str | None, str] = dict(zip(map(attrgetter("span_id"), spans), services, strict=True))
    # a root span's parent (None) is no span id: its caller comes out None and is dropped
    callers = map(owner.get, map(attrgetter("parent_id"), spans))
    pairs = set(zip(callers, services, strict=True))
    seen = {(a, b) for a, b in pairs if a is not None and a != b}
    return [Edge(caller=a, callee=b) for a, b in sorted(seen)]

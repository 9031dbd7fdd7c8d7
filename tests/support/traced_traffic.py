"""Log lines written inside spans, on a clock of seconds from 0, for the error-origin tests."""

from __future__ import annotations

from opsagent.domain import LogRecord, Span


def span(trace: str, sid: str, service: str, op: str, t: float, parent: str | None = None) -> Span:
    return Span(
        trace_id=trace, span_id=sid, parent_id=parent, service=service, operation=op, start=t, duration_ms=5.0
    )


def line(t: float, service: str, message: str, trace: str, span_id: str, level: str = "info") -> LogRecord:
    return LogRecord(
        timestamp=t, service=service, level=level, message=message, trace_id=trace, span_id=span_id
    )


def wrong_answer_beside_a_failing_batch(calls_back: bool = True) -> tuple[list[LogRecord], list[Span]]:
    """mid -> back (Back.get, which never changes), every 2 s for 1000 s. From 600 s mid returns a
    wrong answer and logs an error in its own span; at the same time back's batch job, which mid
    never calls, starts failing on its own. Without ``calls_back`` mid's requests call nothing."""
    logs: list[LogRecord] = []
    spans: list[Span] = []
    for i in range(500):
        t = i * 2.0
        tid, job = f"t{i}", f"j{i}"
        spans += [span(tid, f"m{i}", "mid", "Mid.handle", t), span(job, f"k{i}", "back", "Back.batch", t)]
        if calls_back:
            spans.append(span(tid, f"b{i}", "back", "Back.get", t, parent=f"m{i}"))
            logs.append(line(t, "back", "INFO c.Back#30 found it", tid, f"b{i}"))
        logs += [
            line(t, "mid", "INFO b.Mid#20 handling", tid, f"m{i}"),
            line(t, "back", "INFO c.Batch#5 batch step", job, f"k{i}"),
        ]
        if t >= 600:
            logs.append(line(t, "mid", "ERROR b.Mid#55 wrong total", tid, f"m{i}", level="error"))
            logs.append(line(t, "back", "ERROR c.Batch#9 batch failed", job, f"k{i}", level="error"))
    return logs, spans

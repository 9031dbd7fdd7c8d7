"""The error-origin walk blames a callee only where the operation the trace called changed."""

from __future__ import annotations

from opsagent.analysis.patterns import pattern_shifts
from opsagent.domain import LogRecord, Span


def _span(trace: str, sid: str, service: str, op: str, t: float, parent: str | None = None) -> Span:
    return Span(
        trace_id=trace, span_id=sid, parent_id=parent, service=service, operation=op, start=t, duration_ms=5.0
    )


def _line(t: float, service: str, message: str, trace: str, span: str, level: str = "info") -> LogRecord:
    return LogRecord(timestamp=t, service=service, level=level, message=message, trace_id=trace, span_id=span)


def _traffic() -> tuple[list[LogRecord], list[Span]]:
    """mid -> back (Back.get, which never changes), every 2 s for 1000 s. From 600 s mid returns a
    wrong answer and logs an error in its own span; at the same time back's batch job, which mid
    never calls, starts failing on its own."""
    logs: list[LogRecord] = []
    spans: list[Span] = []
    for i in range(500):
        t = i * 2.0
        tid, job = f"t{i}", f"j{i}"
        spans += [
            _span(tid, f"m{i}", "mid", "Mid.handle", t),
            _span(tid, f"b{i}", "back", "Back.get", t, parent=f"m{i}"),
            _span(job, f"k{i}", "back", "Back.batch", t),
        ]
        logs += [
            _line(t, "mid", "INFO b.Mid#20 handling", tid, f"m{i}"),
            _line(t, "back", "INFO c.Back#30 found it", tid, f"b{i}"),
            _line(t, "back", "INFO c.Batch#5 batch step", job, f"k{i}"),
        ]
        if t >= 600:
            logs.append(_line(t, "mid", "ERROR b.Mid#55 wrong total", tid, f"m{i}", level="error"))
            logs.append(_line(t, "back", "ERROR c.Batch#9 batch failed", job, f"k{i}", level="error"))
    return logs, spans


def test_a_callee_that_changed_elsewhere_is_not_blamed_for_the_callers_error() -> None:
    logs, spans = _traffic()
    shifts = pattern_shifts(logs, spans, 0.0, 600.0, 1000.0, origin_by_operation=True)
    origins = {(s.service, s.key) for s in shifts if s.kind == "origin"}
    # mid's error originates in mid; back's batch failure is back's own
    assert ("mid", "ERROR b.Mid#55 wrong total") in origins, origins
    assert not any("surfacing in mid" in key for _, key in origins), origins
    mid_error = next(s for s in shifts if s.service == "mid" and s.kind == "log" and s.error)
    assert mid_error.echo_share == 0.0  # mid's own error, not an echo of back's batch job


def test_blamed_on_any_changed_callee_without_the_switch() -> None:
    # the coarser reading: back changed somewhere, so mid's error is taken for back's
    logs, spans = _traffic()
    shifts = pattern_shifts(logs, spans, 0.0, 600.0, 1000.0, origin_by_operation=False)
    origins = {(s.service, s.key) for s in shifts if s.kind == "origin"}
    assert ("back", "ERROR b.Mid#55 wrong total (surfacing in mid)") in origins, origins

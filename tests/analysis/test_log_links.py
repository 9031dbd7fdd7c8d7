"""Client-side latency naming, code-location templates, and trace-linked error origins."""

from __future__ import annotations

from datetime import UTC, datetime

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.logs import template_of
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.patterns import pattern_shifts
from opsagent.domain import (
    EvidenceBundle,
    Incident,
    LogRecord,
    MetricSeries,
    SignalKind,
    Span,
    TimeWindow,
)
from opsagent.domain.signals import classify_signal, is_client_side


def test_client_side_signals_are_recognised_by_word() -> None:
    for name in (
        "PodClientLatencyP90(s)",
        "client_latency_p99",
        "envoy_cluster_upstream_rq_time",
        "outbound_ms",
    ):
        assert is_client_side(name), name
    for name in ("PodServerLatencyP90(s)", "http_server_duration_seconds", "latency", "clientele_total"):
        assert not is_client_side(name), name
    assert classify_signal("PodClientLatencyP90(s)") is SignalKind.LATENCY


def test_code_locations_are_constant_and_payload_is_cut() -> None:
    a = template_of(
        "18:03:57.913 INFO  f.m.s.BasicServiceImpl#360 TraceID: ab12 SpanID: cd34 [check][Check Station][name: nanjing]"
    )
    b = template_of(
        "18:04:01.100 INFO  f.m.s.BasicServiceImpl#360 TraceID: ef56 SpanID: 78ab [check][Check Station][name: suzhou, 2 ids]"
    )
    assert a == b
    assert "BasicServiceImpl#360" in a and "nanjing" not in a
    other_line = template_of(
        "18:03:57.913 INFO  f.m.s.BasicServiceImpl#418 TraceID: ab12 SpanID: cd34 [check][Check Station][name: x]"
    )
    assert other_line != a
    assert "Bar.java:123" in template_of("at com.foo.Bar.method(Bar.java:123)")
    assert template_of("main.go:42: dial tcp 10.0.0.1:5432: connection refused").startswith("main.go:42:")
    # no location: digit-bearing tokens masked as before
    assert template_of("version 2.14.0 started in 35 ms") == "version <*> started in <*> ms"


def _span(trace: str, sid: str, service: str, op: str, t: float, parent: str | None = None) -> Span:
    return Span(
        trace_id=trace, span_id=sid, parent_id=parent, service=service, operation=op, start=t, duration_ms=5.0
    )


def _traffic(with_fault: bool) -> tuple[list[LogRecord], list[Span]]:
    """front -> mid -> back, every 2 s for 1000 s; from 600 s back changes what it does.

    With the fault, back takes another code path (a new log statement, no error) and mid, which
    chokes on back's answer, logs an error; front's error handler logs one too, echoing mid's.
    """
    logs: list[LogRecord] = []
    spans: list[Span] = []
    for i in range(500):
        t = i * 2.0
        tid = f"t{i}"
        spans += [
            _span(tid, f"f{i}", "front", "GET /", t),
            _span(tid, f"m{i}", "mid", "Mid.handle", t, parent=f"f{i}"),
            _span(tid, f"b{i}", "back", "Back.get", t, parent=f"m{i}"),
        ]
        broken = with_fault and t >= 600
        logs.append(
            LogRecord(
                timestamp=t, service="front", message="INFO a.Front#10 request", trace_id=tid, span_id=f"f{i}"
            )
        )
        logs.append(
            LogRecord(
                timestamp=t, service="mid", message="INFO b.Mid#20 handling", trace_id=tid, span_id=f"m{i}"
            )
        )
        back_line = "INFO c.Back#77 fallback value" if broken else "INFO c.Back#30 found it"
        logs.append(LogRecord(timestamp=t, service="back", message=back_line, trace_id=tid, span_id=f"b{i}"))
        if broken:
            logs.append(
                LogRecord(
                    timestamp=t,
                    service="mid",
                    level="error",
                    message="ERROR b.Mid#55 Get route failed",
                    trace_id=tid,
                    span_id=f"m{i}",
                )
            )
            logs.append(
                LogRecord(
                    timestamp=t,
                    service="front",
                    level="error",
                    message="ERROR a.Front#90 upstream error",
                    trace_id=tid,
                    span_id=f"f{i}",
                )
            )
    return logs, spans


def test_error_origin_walks_to_the_deepest_changed_callee() -> None:
    logs, spans = _traffic(with_fault=True)
    shifts = pattern_shifts(logs, spans, 0.0, 600.0, 1000.0)
    origins = [s for s in shifts if s.kind == "origin"]
    assert origins and {s.service for s in origins} == {"back"}, [(s.service, s.key) for s in origins]
    echoes = {s.service: s for s in shifts if s.kind == "log" and s.error}
    assert echoes["front"].echo_share == 1.0 and echoes["mid"].echo_share == 1.0
    assert shifts[0].service == "back"


def test_no_fault_no_origin() -> None:
    logs, spans = _traffic(with_fault=False)
    assert not [s for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0) if s.kind == "origin"]


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def test_client_latency_does_not_make_the_caller_the_suspect() -> None:
    ts = [float(60 * i) for i in range(30)]
    flat = [0.005 + 0.0001 * (i % 3) for i in range(30)]
    jump = [v if i < 20 else 40.0 for i, v in enumerate(flat)]
    cpu = [10.0 + (i % 3) for i in range(30)]
    hot = [v if i < 20 else 90.0 for i, v in enumerate(cpu)]
    bundle = EvidenceBundle(
        incident=Incident(
            id="t",
            title="t",
            window=TimeWindow(start=_at(ts[0]), end=_at(ts[-1])),
            alert_time=_at(ts[20]),
        ),
        metrics=[
            MetricSeries(
                service="caller",
                signal="PodClientLatencyP99(s)",
                kind=SignalKind.LATENCY,
                timestamps=ts,
                values=jump,
            ),
            MetricSeries(
                service="caller", signal="CpuUsageRate(%)", kind=SignalKind.CPU, timestamps=ts, values=cpu
            ),
            MetricSeries(
                service="callee", signal="CpuUsageRate(%)", kind=SignalKind.CPU, timestamps=ts, values=hot
            ),
        ],
    )
    suspects = rank_suspects(bundle)
    assert suspects[0].service == "callee"
    caller = next((s for s in suspects if s.service == "caller"), None)
    # its own CPU wobble is all that counts against it: not the 40 s it waited on its callees
    assert caller is None or caller.score < 0.25 * suspects[0].score
    assert caller is None or not any("Client" in (e.signal or "") for e in caller.evidence)


def _aftermath_bundle() -> EvidenceBundle:
    """Two services write steadily for 20 min; at 600 s `cause` starts failing (20 error lines); from
    1080 s, 8 min later, `cleanup` floods its log with a new error (200 lines), as a retry storm or an
    operator's restart would."""
    logs: list[LogRecord] = []
    for i in range(600):
        t = i * 2.0
        logs.append(LogRecord(timestamp=t, service="cause", message="INFO c.Cause#10 served"))
        logs.append(LogRecord(timestamp=t, service="cleanup", message="INFO d.Cleanup#10 swept"))
        if 600 <= t < 640:
            logs.append(
                LogRecord(timestamp=t, service="cause", level="error", message="ERROR c.Cause#99 bad reply")
            )
        if t >= 1080:
            for _ in range(2):
                logs.append(
                    LogRecord(
                        timestamp=t, service="cleanup", level="error", message="ERROR d.Cleanup#50 lock lost"
                    )
                )
    return EvidenceBundle(
        incident=Incident(
            id="late",
            title="late",
            window=TimeWindow(start=_at(0.0), end=_at(1199.0)),
            alert_time=_at(630.0),
        ),
        logs=logs,
    )


def test_events_long_after_the_onset_do_not_outrank_the_fault() -> None:
    bundle = _aftermath_bundle()
    assert rank_suspects(bundle)[0].service == "cause"
    # the switch is what makes the difference: over the whole window the later flood wins
    assert rank_suspects(bundle, DEFAULT_OPTIONS.with_(event_horizon=False))[0].service == "cleanup"


def _served(stop_line: bool, stop_calls: bool) -> tuple[list[LogRecord], list[Span]]:
    """front calls back's two operations every 2 s for 1000 s; in each back's span writes its own
    statements. From 600 s either back's `found it` statement of Back.get stops (``stop_line``: an
    exception skips it, requests still arrive) or front stops calling Back.list (``stop_calls``:
    that operation loses its requests, Back.get carries on)."""
    logs: list[LogRecord] = []
    spans: list[Span] = []

    def line(t: float, sid: str, service: str, message: str) -> None:
        logs.append(LogRecord(timestamp=t, service=service, message=message, trace_id=sid, span_id=sid))

    for i in range(500):
        t = i * 2.0
        late = t >= 600
        spans.append(_span(f"t{i}", f"f{i}", "front", "GET /", t))
        # the rest of the system carries on (what the size factors are fitted on)
        for k in range(5):
            line(t, f"f{i}", "front", f"INFO a.Front#{k} step")
            spans.append(_span(f"t{i}", f"f{i}.{k}", "front", f"Front.step{k}", t, parent=f"f{i}"))
        spans.append(_span(f"t{i}", f"g{i}", "back", "Back.get", t, parent=f"f{i}"))
        for k in range(3):
            line(t, f"g{i}", "back", f"INFO c.Back#{20 + k} lookup")
        if not (stop_line and late):
            line(t, f"g{i}", "back", "INFO c.Back#30 found it")
        if not (stop_calls and late):
            spans.append(_span(f"t{i}", f"l{i}", "back", "Back.list", t, parent=f"f{i}"))
            line(t, f"l{i}", "back", "INFO c.Back#40 listing")
    return logs, spans


def test_a_statement_that_stops_while_its_requests_keep_coming_weighs_as_an_error() -> None:
    logs, spans = _served(stop_line=True, stop_calls=False)
    stopped = next(
        s
        for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0)
        if s.service == "back" and "Back#30" in s.key
    )
    assert stopped.is_gone and stopped.relative_ratio < 0.5
    weighed_down = next(
        s
        for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0, stopped_as_error=False)
        if s.service == "back" and "Back#30" in s.key
    )
    assert stopped.score == 2 * weighed_down.score


def test_a_statement_that_falls_with_its_requests_is_a_victim_not_a_stopped_path() -> None:
    logs, spans = _served(stop_line=False, stop_calls=True)
    listing = next(
        s
        for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0)
        if s.service == "back" and "Back#40" in s.key
    )
    # it fell as far as the service's other statements did not, but no further than the span it
    # is written in: Back.list lost its requests, no code path stopped
    assert listing.is_gone and listing.relative_ratio > 0.5
    alone = next(
        s
        for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0, stopped_as_error=False)
        if s.service == "back" and "Back#40" in s.key
    )
    assert listing.score == alone.score


def test_the_report_says_when_a_fall_is_a_stopped_code_path() -> None:
    from opsagent.analysis.items import pattern_item

    logs, spans = _served(stop_line=True, stop_calls=False)
    stopped = next(
        s
        for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0)
        if s.service == "back" and "Back#30" in s.key
    )
    assert "a code path stopped" in (pattern_item(stopped).summary or "")
    logs, spans = _served(stop_line=False, stop_calls=True)
    lost = next(
        s
        for s in pattern_shifts(logs, spans, 0.0, 600.0, 1000.0)
        if s.service == "back" and "Back#40" in s.key
    )
    assert "code path" not in (pattern_item(lost).summary or "")


def _handler_steps(stop_step: bool) -> list[Span]:
    """front calls back's Back.get every 2 s for 1000 s; Back.get runs its own step Back.cache.

    From 600 s (``stop_step``) Back.get keeps being called but no longer reaches Back.cache: an
    exception or an early return inside back's handler.
    """
    spans: list[Span] = []
    for i in range(500):
        t = i * 2.0
        spans.append(_span(f"t{i}", f"f{i}", "front", "GET /", t))
        for k in range(5):
            spans.append(_span(f"t{i}", f"f{i}.{k}", "front", f"Front.step{k}", t, parent=f"f{i}"))
        spans.append(_span(f"t{i}", f"g{i}", "back", "Back.get", t, parent=f"f{i}"))
        if not (stop_step and t >= 600):
            spans.append(_span(f"t{i}", f"c{i}", "back", "Back.cache", t, parent=f"g{i}"))
    return spans


def test_an_operation_that_stops_under_its_own_handler_is_a_stopped_code_path() -> None:
    from opsagent.analysis.items import pattern_item

    shifts = pattern_shifts([], _handler_steps(stop_step=True), 0.0, 600.0, 1000.0)
    step = next(s for s in shifts if s.service == "back" and s.kind == "operation" and s.key == "Back.cache")
    assert step.is_gone and step.relative_ratio < 0.5
    assert "a code path stopped" in (pattern_item(step).summary or "")


def test_an_entry_operation_that_loses_its_calls_is_not_a_stopped_code_path() -> None:
    # front stops calling Back.list: under a caller's span, the fall is the caller's doing
    _, spans = _served(stop_line=False, stop_calls=True)
    listing = next(
        s
        for s in pattern_shifts([], spans, 0.0, 600.0, 1000.0)
        if s.service == "back" and s.kind == "operation" and s.key == "Back.list"
    )
    assert listing.is_gone and listing.relative_ratio == 1.0


def test_a_stopped_handler_step_types_the_fault_as_code() -> None:
    from opsagent.domain import FaultType

    spans = _handler_steps(stop_step=True)
    incident = Incident(
        id="rec-steps",
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(1000, UTC)),
        alert_time=datetime.fromtimestamp(630, UTC),
    )
    bundle = EvidenceBundle(incident=incident, spans=spans)
    back = next(s for s in rank_suspects(bundle) if s.service == "back")
    assert back.fault_type is FaultType.ERRORS_CODE
    untyped = next(
        s for s in rank_suspects(bundle, DEFAULT_OPTIONS.with_(code_path_falls=False)) if s.service == "back"
    )
    assert untyped.fault_type is not FaultType.ERRORS_CODE

"""Event patterns: the count test, the size factor, and which service a changed event lands on."""

from __future__ import annotations

import math

from opsagent.analysis.events import binomial_z, size_factor
from opsagent.analysis.patterns import pattern_shifts
from opsagent.domain import LogRecord, Span


def test_binomial_z_sign_and_scale() -> None:
    assert binomial_z(50, 50, 0.5) == 0.0
    assert binomial_z(80, 20, 0.5) > 5.0
    assert binomial_z(20, 80, 0.5) < -5.0
    # a new event is surprising, but a frequent one's small wobble is not
    assert binomial_z(20.5, 0.5, 0.5) > binomial_z(1100, 1000, 0.5)
    assert binomial_z(0, 0, 0.5) == 0.0
    assert binomial_z(5, 5, 1.0) == 0.0


def test_size_factor_ignores_a_minority_of_changed_events() -> None:
    pairs = [(100, 200)] * 6 + [(100, 5000)]
    assert math.isclose(size_factor(pairs), (200.5 / 100.5), rel_tol=1e-9)
    # too few supported events: ratio of the totals
    assert math.isclose(size_factor([(10, 30), (1, 0)]), 30.5 / 11.5)


def _logs(service: str, message: str, start: float, end: float, every: float) -> list[LogRecord]:
    n = int((end - start) / every)
    return [LogRecord(timestamp=start + i * every, service=service, message=message) for i in range(n)]


def test_new_error_template_scores_on_its_service_and_load_change_does_not() -> None:
    logs: list[LogRecord] = []
    # ten steady templates on three services; traffic doubles in the incident (every other second)
    for k in range(10):
        svc = f"svc{k % 3}"
        logs += _logs(svc, f"kind{chr(97 + k)} request handled ok", 0, 600, 10.0)
        logs += _logs(svc, f"kind{chr(97 + k)} request handled ok", 600, 900, 5.0)
    logs += _logs("svc1", "ERROR lookup failed: no such contact", 600, 900, 10.0)
    logs.sort(key=lambda r: r.timestamp)
    shifts = pattern_shifts(logs, [], 0.0, 600.0, 900.0)
    assert shifts, "the new error template must be found"
    top = shifts[0]
    assert (top.service, top.kind, top.error, top.is_new) == ("svc1", "log", True, True)
    assert top.z > 3.0
    assert all(s.key.startswith("ERROR") for s in shifts), [s.key for s in shifts]
    assert len(top.digest) == 10 and top.digest == pattern_shifts(logs, [], 0.0, 600.0, 900.0)[0].digest


def test_errors_that_stop_are_a_recovery_not_evidence() -> None:
    logs: list[LogRecord] = []
    for k in range(10):
        logs += _logs(f"svc{k % 3}", f"kind{chr(97 + k)} request handled ok", 0, 900, 10.0)
    # an earlier failure of svc2 that ended before the incident, and a statement of svc0 that stops
    logs += _logs("svc2", "ERROR upstream timed out", 0, 500, 5.0)
    logs += _logs("svc0", "cache warm, serving", 0, 600, 5.0)
    logs.sort(key=lambda r: r.timestamp)
    shifts = pattern_shifts(logs, [], 0.0, 600.0, 900.0)
    assert not [s for s in shifts if s.service == "svc2"], [(s.service, s.key) for s in shifts]
    # a non-error statement that stops still counts (a code path no longer taken)
    assert any(s.service == "svc0" and s.is_gone for s in shifts)


def test_a_rise_of_a_non_error_statement_is_request_mix_not_evidence() -> None:
    logs: list[LogRecord] = []
    for k in range(10):
        logs += _logs(f"svc{k % 3}", f"kind{chr(97 + k)} request handled ok", 0, 900, 10.0)
    # users search four times as often from 600 s: svc1's search statement rises, nothing fails
    logs += _logs("svc1", "search for trips between stations", 0, 600, 20.0)
    logs += _logs("svc1", "search for trips between stations", 600, 900, 5.0)
    logs.sort(key=lambda r: r.timestamp)
    assert not pattern_shifts(logs, [], 0.0, 600.0, 900.0)
    every = pattern_shifts(logs, [], 0.0, 600.0, 900.0, error_rises_only=False)
    assert [(s.service, s.z > 0, s.error) for s in every] == [("svc1", True, False)]


def _span(i: int, service: str, op: str, t: float, parent: str | None = None) -> Span:
    return Span(
        trace_id=f"t{i}",
        span_id=f"{service}-{i}",
        parent_id=parent,
        service=service,
        operation=op,
        start=t,
        duration_ms=5.0,
    )


def test_error_handler_span_and_gone_operation() -> None:
    spans: list[Span] = []
    for i in range(200):
        t = float(i * 5)
        spans.append(_span(i, "front", "GET /", t))
        spans.append(_span(i, "back", "Lookup", t, parent=f"front-{i}"))
        spans.append(_span(i, "other", "Tick", t))
        if t < 600:
            spans.append(_span(i + 10_000, "back", "Cache.hit", t, parent=f"back-{i}"))
        else:
            spans.append(_span(i + 10_000, "back", "ErrorController.error", t, parent=f"back-{i}"))
    shifts = pattern_shifts([], spans, 0.0, 600.0, 1000.0)
    by_key = {(s.service, s.key): s for s in shifts}
    err = by_key[("back", "ErrorController.error")]
    assert err.error and err.is_new and shifts[0] is err
    gone = by_key[("back", "Cache.hit")]
    assert gone.is_gone and gone.z < 0 and gone.score < err.score
    assert ("front", "GET /") not in by_key and ("other", "Tick") not in by_key


def test_reference_period_marks_what_is_normal_and_ignores_its_records_inside_the_window() -> None:
    steady = [
        r
        for k in range(8)
        for r in _logs(f"svc{k % 2}", f"kind{chr(97 + k)} request handled ok", 0, 900, 10.0)
    ]
    # the minutes before the split hold an earlier incident's error on svc0 at the same rate as
    # the incident (so it looks "normal" there); the reference period never had it
    earlier = _logs("svc0", "ERROR payment declined by provider", 0, 600, 10.0)
    now = _logs("svc0", "ERROR payment declined by provider", 600, 900, 10.0)
    logs = sorted(steady + earlier + now, key=lambda r: r.timestamp)
    without = pattern_shifts(logs, [], 0.0, 600.0, 900.0)
    assert not any(s.key.startswith("ERROR") for s in without), "in-window baseline alone hides it"

    reference = [
        r
        for k in range(8)
        for r in _logs(f"svc{k % 2}", f"kind{chr(97 + k)} request handled ok", -7200, -5400, 10.0)
    ]
    with_ref = pattern_shifts(logs, [], 0.0, 600.0, 900.0, reference_logs=reference)
    assert with_ref and with_ref[0].service == "svc0" and with_ref[0].key.startswith("ERROR")
    assert with_ref[0].z > 3.0
    # found both with the reference joined to the normal side and against it alone: listed once
    assert len([s for s in with_ref if s.key.startswith("ERROR")]) == 1

    # reference records inside the incident part are not normal for it: they are ignored
    in_incident = [
        r.model_copy(update={"timestamp": r.timestamp + 7200 + 600}) for r in reference if r.timestamp < -7000
    ]
    assert pattern_shifts(logs, [], 0.0, 600.0, 900.0, reference_logs=in_incident) == without
    # a reference recorded among the minutes before the split, whose records the window holds too,
    # counts once: the comparison is the window's own
    burst = _logs("svc1", "export batch written", 0, 600, 10.0) + _logs(
        "svc1", "export batch written", 600, 900, 2.0
    )
    busy = sorted(logs + burst, key=lambda r: r.timestamp)
    held = [r for r in busy if r.timestamp < 600]
    every = {
        s.key: s
        for s in pattern_shifts(busy, [], 0.0, 600.0, 900.0, reference_logs=held, error_rises_only=False)
    }
    assert every["export batch written"].normal_count == 60


def test_an_error_going_on_since_before_the_split_is_found_against_the_reference() -> None:
    steady = [
        r
        for k in range(8)
        for r in _logs(f"svc{k % 2}", f"kind{chr(97 + k)} request handled ok", 0, 900, 10.0)
    ]
    # svc1 has been failing at one rate since long before the split: against the minutes before
    # it nothing changed, against a known-good minute it is the failure
    failing = _logs("svc1", "ERROR contact not found", 0, 900, 2.0)
    logs = sorted(steady + failing, key=lambda r: r.timestamp)
    assert not pattern_shifts(logs, [], 0.0, 600.0, 900.0)
    minute = [
        r
        for k in range(8)
        for r in _logs(f"svc{k % 2}", f"kind{chr(97 + k)} request handled ok", -3600, -3540, 10.0)
    ]
    found = pattern_shifts(logs, [], 0.0, 600.0, 900.0, reference_logs=minute)
    assert [(s.service, s.error, s.normal_count) for s in found] == [("svc1", True, 0)]
    assert found[0].key.endswith("(against the reference period)") and found[0].z > 5.0


def test_a_code_path_that_stops_falls_relative_to_its_own_service() -> None:
    from opsagent.analysis.events import stopped_code_path

    logs: list[LogRecord] = []
    # svc0: three steady statements and one that stops at the split (an exception skips it);
    # svc1: every statement falls alike (the whole service gets fewer requests)
    for k in range(8):
        logs += _logs("svc0", f"handled step{chr(97 + k)} ok", 0, 900, 5.0)
    logs += _logs("svc0", "wrote result to cache", 0, 600, 5.0)
    for k in range(3):
        logs += _logs("svc1", f"served page{chr(97 + k)}", 0, 600, 5.0)
        logs += _logs("svc1", f"served page{chr(97 + k)}", 600, 900, 20.0)
    logs.sort(key=lambda r: r.timestamp)
    shifts = {(s.service, s.key): s for s in pattern_shifts(logs, [], 0.0, 600.0, 900.0)}
    stopped = shifts[("svc0", "wrote result to cache")]
    assert stopped.z < -3.0 and stopped_code_path(stopped.relative_ratio)
    fell_alike = [s for (svc, _), s in shifts.items() if svc == "svc1"]
    assert fell_alike, "svc1's statements fell four-fold against the other service"
    assert not any(stopped_code_path(s.relative_ratio) for s in fell_alike)


def test_a_request_line_that_stops_is_requests_that_stopped_coming_not_a_code_path() -> None:
    from opsagent.analysis.events import DECREASE_WEIGHT, NON_ERROR_WEIGHT
    from opsagent.analysis.logs import request_line

    logs: list[LogRecord] = []
    # the same service, twice: a statement inside a handler stops, and an endpoint's request line
    # stops (its callers stopped sending it) while the service's other endpoints kept being called
    for svc in ("handler", "endpoint"):
        for k in range(8):
            logs += _logs(svc, f"GET /page{chr(97 + k)} 200 3ms", 0, 900, 5.0)
    logs += _logs("handler", "wrote result to cache", 0, 600, 5.0)
    logs += _logs("endpoint", "POST /cart/42 200 1ms", 0, 600, 5.0)
    logs.sort(key=lambda r: r.timestamp)
    shifts = {(s.service, s.key): s for s in pattern_shifts(logs, [], 0.0, 600.0, 900.0)}
    statement = shifts[("handler", "wrote result to cache")]
    request = shifts[("endpoint", "POST <*> <*> <*>")]
    # both fell as far below their service's traffic
    assert statement.z == request.z and statement.relative_ratio == request.relative_ratio
    assert statement.code_path_stopped and not request.code_path_stopped
    # the stopped statement weighs as an error, the request line as a fall of an ordinary event
    assert request.score == math.log1p(abs(request.z)) * NON_ERROR_WEIGHT * DECREASE_WEIGHT
    assert statement.score == math.log1p(abs(statement.z)) * DECREASE_WEIGHT
    assert request_line('<*> - - [<*> <*>] "GET /cart HTTP/1.1" 200 <*>')
    assert request_line("GET /cart/:user <*> <*>") and not request_line("wrote result to cache")
    assert request_line("<*> INFO PUT <*> <*>")
    assert not request_line("GETTING /cart") and not request_line("failed to GET the cart")

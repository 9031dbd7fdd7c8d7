"""The error-origin walk blames a callee only where the operation the trace called changed."""

from __future__ import annotations

from opsagent.analysis.patterns import pattern_shifts

from ..support.traced_traffic import wrong_answer_beside_a_failing_batch as _traffic


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

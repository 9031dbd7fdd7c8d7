"""``collect()`` with a reference period: log and trace sources run over it as well, metrics do not.

The sources here are fakes at our own ``EvidenceSource`` seam: each answers from the window it is
asked for, like the live and replayed sources do, and notes which windows it was asked for.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from opsagent.domain import EvidenceGap, Incident, LogRecord, MetricSeries, SignalKind, Span, TimeWindow
from opsagent.errors import LogSourceError
from opsagent.evidence.base import REFERENCE_SOURCES, Collected, collect

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
WINDOW = TimeWindow(start=T0, end=T0 + timedelta(hours=2))
# The same hours the day before.
REFERENCE = TimeWindow(start=T0 - timedelta(days=1), end=T0 - timedelta(days=1) + timedelta(hours=2))


def incident(reference: TimeWindow | None = REFERENCE) -> Incident:
    return Incident(
        id="i1",
        title="checkout errors",
        window=WINDOW,
        alert_time=T0 + timedelta(minutes=90),
        reference=reference,
    )


def tag(window: TimeWindow) -> str:
    return "reference" if window == REFERENCE else "incident"


class Asked:
    """The windows a fake source was asked for (sources run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.windows: list[TimeWindow] = []

    def note(self, inc: Incident) -> None:
        with self._lock:
            self.windows.append(inc.window)


class FakeLogs:
    name = "logs"

    def __init__(self, fail_on_reference: bool = False) -> None:
        self.asked = Asked()
        self.fail_on_reference = fail_on_reference

    def collect(self, inc: Incident) -> Collected:
        self.asked.note(inc)
        which = tag(inc.window)
        if which == "reference" and self.fail_on_reference:
            raise LogSourceError("Loki rejected the query: HTTP 400: too far back")
        t = inc.window.start_s + 60
        gaps = [EvidenceGap(source="logs", reason="1 of 4 time slices hit the limit")]
        return Collected(
            logs=[LogRecord(timestamp=t, service="orders", message=f"{which} line")],
            gaps=gaps if which == "reference" else [],
        )


class FakeTraces:
    name = "traces"

    def __init__(self) -> None:
        self.asked = Asked()

    def collect(self, inc: Incident) -> Collected:
        self.asked.note(inc)
        which = tag(inc.window)
        span = Span(
            trace_id=f"{which}-t",
            span_id=f"{which}-s",
            service="orders",
            operation="CreateOrder",
            start=inc.window.start_s + 30,
            duration_ms=12.0,
        )
        return Collected(spans=[span])


class FakeMetrics:
    name = "metrics"

    def __init__(self) -> None:
        self.asked = Asked()

    def collect(self, inc: Incident) -> Collected:
        self.asked.note(inc)
        series = MetricSeries(
            service="orders",
            signal="error_ratio",
            kind=SignalKind.ERRORS,
            timestamps=[inc.window.start_s, inc.window.end_s],
            values=[0.0, 0.4],
        )
        return Collected(metrics=[series])


def test_logs_and_traces_are_collected_for_the_reference_and_metrics_are_not() -> None:
    logs, traces, metrics = FakeLogs(), FakeTraces(), FakeMetrics()
    bundle = collect(incident(), [metrics, logs, traces])
    assert [r.message for r in bundle.logs] == ["incident line"]
    assert [r.message for r in bundle.reference_logs] == ["reference line"]
    assert [s.span_id for s in bundle.spans] == ["incident-s"]
    assert [s.span_id for s in bundle.reference_spans] == ["reference-s"]
    assert bundle.reference_logs[0].timestamp == REFERENCE.start_s + 60
    # Metrics keep their in-window baseline: never asked for the reference period.
    assert metrics.asked.windows == [WINDOW]
    assert len(bundle.metrics) == 1
    assert sorted(logs.asked.windows, key=lambda w: w.start) == [REFERENCE, WINDOW]
    assert sorted(traces.asked.windows, key=lambda w: w.start) == [REFERENCE, WINDOW]
    # The bundle keeps the incident as given, reference included.
    assert bundle.incident.reference == REFERENCE and bundle.incident.window == WINDOW
    # A gap a source reports for the reference is named after the reference period.
    assert [(g.source, g.reason) for g in bundle.gaps] == [
        ("logs (reference period)", "1 of 4 time slices hit the limit")
    ]
    assert set(REFERENCE_SOURCES) == {"logs", "traces"}


def test_without_a_reference_each_source_is_asked_once() -> None:
    logs, traces, metrics = FakeLogs(), FakeTraces(), FakeMetrics()
    bundle = collect(incident(reference=None), [metrics, logs, traces])
    assert logs.asked.windows == traces.asked.windows == metrics.asked.windows == [WINDOW]
    assert bundle.reference_logs == [] and bundle.reference_spans == []
    assert [r.message for r in bundle.logs] == ["incident line"]


def test_a_failing_reference_query_is_a_gap_and_the_incidents_evidence_is_kept() -> None:
    logs, traces, metrics = FakeLogs(fail_on_reference=True), FakeTraces(), FakeMetrics()
    bundle = collect(incident(), [metrics, logs, traces])
    assert [(g.source, g.reason) for g in bundle.gaps] == [
        ("logs (reference period)", "Loki rejected the query: HTTP 400: too far back")
    ]
    assert [r.message for r in bundle.logs] == ["incident line"]
    assert bundle.reference_logs == []
    # The other reference source is unaffected.
    assert [s.span_id for s in bundle.reference_spans] == ["reference-s"]
    assert [s.span_id for s in bundle.spans] == ["incident-s"]
    assert len(bundle.metrics) == 1


class Crashing:
    name = "traces"

    def collect(self, inc: Incident) -> Collected:
        if tag(inc.window) == "reference":
            raise RuntimeError("bug")
        return Collected()


def test_a_crash_on_the_reference_is_an_internal_error_gap_for_the_reference_only() -> None:
    bundle = collect(incident(), [Crashing(), FakeLogs()])
    assert [(g.source, g.reason) for g in bundle.gaps] == [
        ("traces (reference period)", "internal error (RuntimeError)"),
        ("logs (reference period)", "1 of 4 time slices hit the limit"),
    ]
    assert [r.message for r in bundle.reference_logs] == ["reference line"]

"""The series an investigation keeps for its charts, and the SVG drawn from them (pure)."""

from __future__ import annotations

import math

from opsagent.api.ui.charts import cause_charts, series_chart
from opsagent.domain import EvidenceItem, FaultType, Findings, MetricSeries, RootCause, SignalKind
from opsagent.pipeline import CHART_POINTS, cited_series

T = [1_000.0 + 60 * i for i in range(600)]


def series(service: str, signal: str, kind: SignalKind, jump_at: int = 400) -> MetricSeries:
    values = [1.0 if i < jump_at else 5.0 for i in range(len(T))]
    values[10] = math.nan  # a gap in the data
    return MetricSeries(service=service, signal=signal, kind=kind, timestamps=T, values=values)


def cause(service: str, fault: FaultType, *ids: str) -> RootCause:
    items = [
        EvidenceItem(id=i, kind="metric" if i.startswith("metric:") else "trace", service=service, summary=i)
        for i in ids
    ]
    return RootCause(service=service, fault_type=fault, confidence=0.9, evidence=items)


def test_cited_series_first_then_the_kinds_a_cause_without_metrics_moved():
    metrics = [
        series("payment", "error_ratio", SignalKind.ERRORS),
        series("payment", "cpu_usage_cores", SignalKind.CPU),
        series("payment", "latency_p99_seconds", SignalKind.LATENCY),
        series("cart", "memory_bytes", SignalKind.MEMORY),
    ]
    findings = Findings(
        reasoner="offline",
        root_causes=[
            cause("cart", FaultType.MEMORY, "metric:cart:memory_bytes"),
            cause("payment", FaultType.ERRORS_CODE, "trace:payment:trace_error_share"),
        ],
    )
    kept = cited_series(metrics, findings)
    assert [s.id for s in kept] == [
        "metric:cart:memory_bytes",
        "metric:payment:error_ratio",  # errors-code: errors, then latency; cpu is not kept
        "metric:payment:latency_p99_seconds",
    ]
    assert all(len(s.timestamps) <= CHART_POINTS and not any(math.isnan(v) for v in s.values) for s in kept)


def test_the_chart_marks_normal_incident_and_onset_and_escapes_names():
    s = series("pay<ment>", "error_ratio", SignalKind.ERRORS)
    item = EvidenceItem(id=s.id, kind="metric", service=s.service, summary="x", baseline=1.0, onset=T[400])
    svg = str(series_chart(s, item))
    assert 'class="line normal"' in svg and 'class="line incident"' in svg and "onset 0" in svg
    assert "pay&lt;ment&gt;" in svg and "<ment>" not in svg
    assert 'class="baseline"' in svg
    # A cause whose evidence is not metric: its service's series, split at the earliest onset.
    trace = EvidenceItem(id="trace:x", kind="trace", service=s.service, summary="t", onset=T[300])
    [chart] = cause_charts([s], s.service, [trace])
    assert "incident-band" in str(chart)

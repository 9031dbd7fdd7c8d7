"""BARO on hand-computed examples: robust scaling on the normal period, max in the anomalous one."""

from datetime import UTC, datetime

import numpy as np
import pytest

from opsagent.domain import EvidenceBundle, FaultType, Incident, MetricSeries, SignalKind, TimeWindow
from opsagent.reasoning.baro import BaroReasoner, metric_score


def test_metric_score_is_the_max_robust_z_of_the_anomalous_part():
    normal = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # median 3, IQR 4 - 2 = 2
    anomalous = np.array([3.0, 9.0, 7.0])
    assert metric_score(normal, anomalous) == pytest.approx((9.0 - 3.0) / 2.0)


def test_zero_iqr_scales_by_one_and_constant_parts_are_dropped():
    # IQR 0 (but not constant): scikit-learn's RobustScaler divides by 1.
    assert metric_score(np.array([5.0, 5.0, 5.0, 5.0, 6.0]), np.array([5.0, 8.0])) == pytest.approx(3.0)
    # Constant in either part: RCAEval drops the column (drop_constant on each part).
    assert metric_score(np.array([5.0, 5.0, 5.0]), np.array([1.0, 9.0])) is None
    assert metric_score(np.array([1.0, 2.0, 3.0]), np.array([7.0, 7.0])) is None


def _series(service, signal, kind, normal, anomalous, unit=""):
    values = [*normal, *anomalous]
    return MetricSeries(
        service=service,
        signal=signal,
        kind=kind,
        unit=unit,
        timestamps=[float(i) for i in range(len(values))],
        values=values,
    )


def test_services_rank_by_their_best_metric_with_memory_in_mb():
    alert = 5  # the first anomalous timestamp
    bundle = EvidenceBundle(
        incident=Incident(
            id="t",
            title="t",
            window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(9, UTC)),
            alert_time=datetime.fromtimestamp(alert, UTC),
        ),
        metrics=[
            # cpu: median 3, IQR 2, max 11 → 4.0
            _series("a", "cpu_usage", SignalKind.CPU, [1, 2, 3, 4, 5], [11, 3, 3]),
            # memory with a zero IQR (not constant): scaled by 1, so the unit decides. In MB it
            # rose by 2.0; in bytes it would score 2e6 and bury every other signal.
            _series(
                "b",
                "memory_bytes",
                SignalKind.MEMORY,
                [3e8, 3e8, 3e8, 3e8, 3e8 + 8],
                [3e8 + 2e6, 3e8, 3e8],
                unit="bytes",
            ),
            # latency: sorted 0.1 0.1 0.2 0.2 0.3 → median 0.2, IQR 0.2 - 0.1; max 0.5 → 3.0
            _series(
                "b", "latency_p90_seconds", SignalKind.LATENCY, [0.1, 0.2, 0.3, 0.2, 0.1], [0.5, 0.2, 0.2]
            ),
            # constant in the normal period: dropped, so c is not ranked at all
            _series("c", "cpu_usage", SignalKind.CPU, [1, 1, 1, 1, 1], [50, 60, 70]),
        ],
    )
    findings = BaroReasoner().reason(bundle, []).findings
    assert findings.reasoner == "baro"
    assert findings.ranking == ["a", "b"]
    assert findings.root_causes[0].service == "a"
    assert findings.root_causes[0].fault_type is FaultType.CPU
    assert findings.root_causes[1].fault_type is FaultType.LATENCY_NETWORK
    assert findings.root_causes[0].evidence[0].score == pytest.approx(4.0)
    assert findings.root_causes[1].evidence[0].score == pytest.approx(3.0)


def test_call_edge_series_are_not_baro_input():
    alert = 5
    edge = _series(
        "d", "call_latency_p50_seconds", SignalKind.LATENCY, [0.1, 0.2, 0.1, 0.2, 0.1], [9.0, 9.0, 9.0]
    )
    bundle = EvidenceBundle(
        incident=Incident(
            id="t",
            title="t",
            window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(9, UTC)),
            alert_time=datetime.fromtimestamp(alert, UTC),
        ),
        metrics=[
            _series("a", "cpu_usage", SignalKind.CPU, [1, 2, 3, 4, 5], [11, 3, 3]),
            edge.model_copy(update={"peer": "a"}),
        ],
    )
    # the edge's 9 s would outrank a's cpu as d's own latency; as a call edge BARO leaves it out
    assert BaroReasoner().reason(bundle, []).findings.ranking == ["a"]

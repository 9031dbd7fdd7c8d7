"""Traffic-aware evidence: failed-request counts and impact accounting (analysis/impact.py, scoring.py)."""

from __future__ import annotations

import numpy as np

from opsagent.analysis.impact import COVER_FLOOR, Excess, Traffic, coverage_weight, excess
from opsagent.analysis.scoring import error_count_z, score_arrays
from opsagent.domain import SignalKind

TS = np.arange(10, dtype=np.float64) * 300.0
NORMAL_END = INCIDENT_START = 7 * 300.0


def _availability_score(availability: list[float], requests: list[float]) -> float:
    result = score_arrays(
        TS,
        100.0 - np.asarray(availability),
        NORMAL_END,
        INCIDENT_START,
        SignalKind.ERRORS,
        "availability_percent",
        "error_percent",
        sign=1,
        requests=np.asarray(requests, dtype=np.float64),
    )
    assert result is not None
    return result.z_max


def test_total_failure_of_a_few_requests_is_weak_evidence() -> None:
    few = _availability_score([100.0] * 7 + [0.0] * 3, [15.0] * 7 + [3.0] * 3)
    many = _availability_score([100.0] * 7 + [98.0] * 3, [1000.0] * 10)
    assert few <= 3.5  # 3 failures: about 3 Poisson sd, however high the share
    assert many > 3 * few  # 20 extra failures among 1000 requests outweigh them


def test_error_count_z_uses_poisson_scale_and_normal_spread() -> None:
    share = np.array([0.01, 0.01, 0.01, 0.05])
    requests = np.array([10000.0, 10000.0, 10000.0, 10000.0])
    normal = np.array([True, True, True, False])
    z = error_count_z(share, requests, normal, p0=0.01)
    # expected 100 failures, sd 10: 400 extra is 40 sd
    assert abs(z[-1] - 40.0) < 1e-9
    assert np.all(z[:3] == 0.0)


def test_excess_counts_request_seconds_and_failures_over_the_incident() -> None:
    t = Traffic(
        ts=TS,
        requests=np.full(10, 100.0),
        latency=np.array([0.01] * 7 + [0.11, 0.11, 0.01]),
        errors=np.array([0.0] * 7 + [0.1, 0.0, 0.0]),
    )
    got = excess(t, NORMAL_END, INCIDENT_START)
    assert got is not None
    assert abs(got.seconds - 20.0) < 1e-9  # 2 buckets x 100 requests x 0.1 s
    assert abs(got.failures - 10.0) < 1e-9


def test_coverage_weight() -> None:
    symptom = Excess(seconds=100.0, failures=10.0)
    assert coverage_weight(Excess(80.0, 0.0), symptom, "latency") == 1.0
    assert coverage_weight(Excess(0.0, 0.0), symptom, "latency") == COVER_FLOOR
    assert coverage_weight(Excess(0.0, 10.0), symptom, "errors") == 1.0
    assert coverage_weight(Excess(0.0, 10.0), symptom, None) == 1.0  # the better of both
    middle = coverage_weight(Excess(12.5, 0.0), symptom, "latency")
    assert COVER_FLOOR < middle < 1.0
    # a symptom without excess in the alerted measure says nothing
    assert coverage_weight(Excess(0.0, 0.0), Excess(0.0, 10.0), "latency") == 1.0

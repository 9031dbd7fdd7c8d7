"""Fault typing reads what is still out when the alert fires (engine option ``current_moves``,
``scoring.score_arrays``' ``current_from``, ``faults.classify``' residual class)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.faults import KindEvidence, classify
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.scoring import score_arrays
from opsagent.domain import EvidenceBundle, FaultType, Incident, MetricSeries, SignalKind, TimeWindow

STEP = 60.0
ALERT_INDEX = 30


def _wiggle(n: int, level: float, amplitude: float) -> list[float]:
    # deterministic noise: a robust scale the floors do not decide
    return [level + amplitude * ((i * 7) % 5 - 2) for i in range(n)]


def test_current_strength_ignores_a_burst_that_ended_before() -> None:
    ts = np.arange(40, dtype=np.float64) * STEP
    vs = np.array(_wiggle(40, 100.0, 1.0))
    vs[26:28] = 200.0  # an earlier episode, over before the alert
    alert = ALERT_INDEX * STEP
    result = score_arrays(
        ts,
        vs,
        20 * STEP,
        20 * STEP,
        SignalKind.MEMORY,
        "memory_mebibytes",
        "mebibytes",
        current_from=alert - STEP,
    )
    assert result is not None
    assert result.z_max > 10.0
    assert result.z_current is not None and result.z_current < 3.0
    # not asked for, or nothing that late: unknown, not zero
    plain = score_arrays(ts, vs, 20 * STEP, 20 * STEP, SignalKind.MEMORY, "memory_mebibytes", "mebibytes")
    assert plain is not None and plain.z_current is None
    late = score_arrays(
        ts, vs, 20 * STEP, 20 * STEP, SignalKind.MEMORY, "memory_mebibytes", "mebibytes", current_from=1e9
    )
    assert late is not None and late.z_current is None


def test_nothing_beyond_noise_is_typed_latency_network() -> None:
    wiggles = [KindEvidence(FaultType.CPU, 1.8, None), KindEvidence(FaultType.MEMORY, 0.4, None)]
    assert classify(wiggles) is FaultType.LATENCY_NETWORK
    # a class past the control limit (3 sd) but short of "moved" (5 sd) still decides
    weak_errors = [*wiggles, KindEvidence(FaultType.ERRORS_CODE, 4.0, None)]
    assert classify(weak_errors) is FaultType.ERRORS_CODE
    assert classify([]) is FaultType.UNKNOWN


def _bundle() -> EvidenceBundle:
    n = 40
    ts = [i * STEP for i in range(n)]
    memory = _wiggle(n, 100.0, 1.0)
    memory[26:28] = [400.0, 420.0]  # the previous fault's burst, back to normal before the alert
    latency = _wiggle(n, 0.10, 0.002)
    latency[ALERT_INDEX:] = [0.9] * (n - ALERT_INDEX)  # this fault: a network delay
    metrics = [
        MetricSeries(service="checkout", signal=signal, kind=kind, timestamps=ts, values=values)
        for signal, kind, values in (
            ("memory_mebibytes", SignalKind.MEMORY, memory),
            ("server_latency_p99_seconds", SignalKind.LATENCY, latency),
        )
    ]
    incident = Incident(
        id="typing",
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(n * STEP, UTC)),
        alert_time=datetime.fromtimestamp(ALERT_INDEX * STEP, UTC),
    )
    return EvidenceBundle(incident=incident, metrics=metrics)


def test_an_earlier_episode_does_not_type_the_fault() -> None:
    # the fixed split (alert minus a quarter of the history) puts the burst inside the incident
    options = DEFAULT_OPTIONS.with_(onset_detection=False)
    bundle = _bundle()
    typed = rank_suspects(bundle, options)[0]
    assert typed.service == "checkout" and typed.fault_type is FaultType.LATENCY_NETWORK
    # without the rule the burst, the stronger and earlier move, decides
    naive = rank_suspects(bundle, options.with_(current_moves=False))[0]
    assert naive.fault_type is FaultType.MEMORY
    # the ranking itself does not read it
    assert naive.score == typed.score

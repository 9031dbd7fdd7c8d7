"""CPU saturation by the level (``analysis/saturation.py``): a container's CPU at its limit is a CPU
fault even when a busy normal period keeps it a few sd out and the stressor's memory moves more."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.saturation import limit_share, saturated_at
from opsagent.domain import EvidenceBundle, FaultType, Incident, MetricSeries, SignalKind, TimeWindow

STEP = 60.0
N = 40
FAULT = 30  # index of the fault's first sample, also the alert


def _swing(level: float, amplitude: float) -> list[float]:
    # a busy service: its normal CPU swings between ~35% and ~85% of the limit
    return [level + amplitude * ((i * 7) % 5 - 2) for i in range(N)]


def _bundle(cpu_signal: str = "cpu_utilisation_percent") -> EvidenceBundle:
    ts = [i * STEP for i in range(N)]
    cpu = _swing(60.0, 12.0)
    cpu[FAULT:] = [100.0, 101.0, 100.5, 100.8, 99.9, 100.2, 100.4, 100.1, 100.3, 100.0]
    memory = _swing(30.0, 0.1)
    # the stressor allocates: memory climbs far and keeps climbing (a side effect, lagging)
    memory[FAULT:] = [30.0 + 3.0 * (k + 1) for k in range(N - FAULT)]
    latency = _swing(0.05, 0.001)
    latency[FAULT:] = [0.5] * (N - FAULT)
    other = _swing(20.0, 1.0)
    series = (
        ("currency", cpu_signal, SignalKind.CPU, cpu),
        ("currency", "memory_utilisation_percent", SignalKind.MEMORY, memory),
        ("currency", "server_latency_p90_seconds", SignalKind.LATENCY, latency),
        ("cart", cpu_signal, SignalKind.CPU, other),
    )
    at = [datetime.fromtimestamp(t, UTC) for t in (0.0, (N - 1) * STEP, FAULT * STEP)]
    incident = Incident(
        id="cpu-saturation",
        title="currency latency",
        window=TimeWindow(start=at[0], end=at[1]),
        alert_time=at[2],
    )
    metrics = [
        MetricSeries(service=svc, signal=sig, kind=kind, timestamps=ts, values=vs)
        for svc, sig, kind, vs in series
    ]
    return EvidenceBundle(incident=incident, metrics=metrics)


def test_a_cpu_at_its_limit_is_typed_cpu_though_memory_moved_more() -> None:
    top = rank_suspects(_bundle())[0]
    assert top.service == "currency" and top.fault_type is FaultType.CPU
    # without the level the busy normal period leaves CPU a few sd out, and memory decides
    without = rank_suspects(_bundle(), DEFAULT_OPTIONS.with_(cpu_saturation=False))[0]
    assert without.service == "currency" and without.fault_type is FaultType.MEMORY


def test_usage_without_a_limit_is_not_read_as_saturation() -> None:
    # percent of one core, cores, the host: no limit to be near, so the score alone decides
    assert limit_share(SignalKind.CPU, "cpu_utilisation_percent", "percent")
    assert limit_share(SignalKind.CPU, "cpu_utilization_ratio", "ratio")
    assert not limit_share(SignalKind.CPU, "cpu_usage_core_percent", "percent")
    assert not limit_share(SignalKind.CPU, "node_cpu_utilisation_percent", "percent")
    assert not limit_share(SignalKind.MEMORY, "memory_utilisation_percent", "percent")
    top = rank_suspects(_bundle("cpu_usage_core_percent"))[0]
    assert top.fault_type is FaultType.MEMORY


def test_saturation_must_be_new_and_still_there_when_the_alert_fires() -> None:
    ts = np.arange(N, dtype=np.float64) * STEP
    busy = np.array(_swing(60.0, 12.0))
    busy[FAULT:] = 100.0
    alert = FAULT * STEP
    assert saturated_at(ts, busy, alert, alert, alert - STEP, "percent") == alert
    # always at its limit: nothing changed
    pinned = np.full(N, 97.0)
    assert saturated_at(ts, pinned, alert, alert, alert - STEP, "percent") is None
    # at its limit once, back below before the alert: an earlier episode
    earlier = np.array(_swing(60.0, 12.0))
    earlier[FAULT - 5 : FAULT - 3] = 100.0
    assert saturated_at(ts, earlier, alert - 6 * STEP, alert - 6 * STEP, alert - STEP, "percent") is None

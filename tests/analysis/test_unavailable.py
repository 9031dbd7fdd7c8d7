"""The ``unavailable`` fault type: a target that went down (``up`` == 0) or restarted, by mechanism."""

from __future__ import annotations

from datetime import UTC, datetime

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.faults import KindEvidence, classify
from opsagent.domain import (
    Edge,
    EvidenceBundle,
    FaultType,
    Incident,
    LogRecord,
    MetricSeries,
    SignalKind,
    TimeWindow,
    Topology,
)
from opsagent.domain.signals import classify_signal

STEP = 15.0
N = 80
FAULT = 60  # index of the first sample after the fault


def _series(service: str, signal: str, values: list[float]) -> MetricSeries:
    return MetricSeries(
        service=service,
        signal=signal,
        kind=classify_signal(signal),
        timestamps=[i * STEP for i in range(N)],
        values=values,
    )


def _wiggle(level: float, amplitude: float, phase: int = 0) -> list[float]:
    return [level + amplitude * (((i + phase) * 7) % 5 - 2) for i in range(N)]


def _bundle(metrics: list[MetricSeries], alert_index: int) -> EvidenceBundle:
    incident = Incident(
        id="inc-unavailable",
        title="checkout errors",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp((N - 1) * STEP, UTC)
        ),
        alert_time=datetime.fromtimestamp(alert_index * STEP, UTC),
    )
    topology = Topology(services=["frontend", "cart"], edges=[Edge(caller="frontend", callee="cart")])
    return EvidenceBundle(incident=incident, metrics=metrics, topology=topology)


def test_up_is_its_own_signal_kind() -> None:
    assert classify_signal("up") is SignalKind.UP
    assert classify_signal("probe_up") is SignalKind.UP
    assert classify_signal("upstream_latency_seconds") is SignalKind.LATENCY
    assert classify_signal("container_restarts_total") is SignalKind.RESTARTS


def test_a_target_that_went_down_ranks_first_and_is_typed_unavailable() -> None:
    up = [1.0] * FAULT + [0.0] * (N - FAULT)
    # the caller fails while its callee is gone; its latency and CPU barely move
    errors = _wiggle(0.5, 0.1)[:FAULT] + [30.0 + (i % 3) for i in range(N - FAULT)]
    metrics = [
        _series("cart", "up", up),
        _series("cart", "cpu_usage_cores", _wiggle(0.4, 0.01)[:FAULT] + [0.0] * (N - FAULT)),
        _series("frontend", "up", [1.0] * N),
        _series("frontend", "error_percent", errors),
        _series("frontend", "latency_p90_seconds", _wiggle(0.2, 0.005, 2)),
    ]
    # the alert fires two minutes after the target went down (a rule's ``for: 2m``)
    suspects = rank_suspects(_bundle(metrics, FAULT + 8))
    assert suspects[0].service == "cart"
    assert suspects[0].fault_type is FaultType.UNAVAILABLE
    # the caller is not discounted below it, but it is not the cause either
    assert [s.service for s in suspects].index("frontend") > 0


def test_memory_growth_then_a_restart_is_memory_a_restart_alone_is_unavailable() -> None:
    grew = [KindEvidence(FaultType.MEMORY, 40.0, 100.0), KindEvidence(FaultType.UNAVAILABLE, 8.0, 400.0)]
    assert classify(grew) is FaultType.MEMORY
    restarted = [KindEvidence(FaultType.UNAVAILABLE, 8.0, 400.0), KindEvidence(FaultType.MEMORY, 1.0, None)]
    assert classify(restarted) is FaultType.UNAVAILABLE
    # the OOM kill and the growth in the same sample: still the leak's
    same_sample = [
        KindEvidence(FaultType.MEMORY, 40.0, 400.0),
        KindEvidence(FaultType.UNAVAILABLE, 8.0, 400.0),
    ]
    assert classify(same_sample) is FaultType.MEMORY


def test_a_down_target_is_told_in_its_own_terms() -> None:
    # Target health is scored as its complement (the down share); the evidence must still read as
    # the signal the reader knows: up fell from 1 to 0, not "rose from 0 to 1".
    up = [1.0] * FAULT + [0.0] * (N - FAULT)
    metrics = [
        _series("cart", "up", up),
        _series("frontend", "up", [1.0] * N),
        _series("frontend", "error_percent", _wiggle(0.5, 0.1)),
    ]
    cart = next(s for s in rank_suspects(_bundle(metrics, FAULT + 8)) if s.service == "cart")
    item = next(e for e in cart.evidence if e.signal == "up")
    assert (item.baseline, item.peak) == (1.0, 0.0)
    assert item.summary.startswith("up fell from 1 to 0 ")


def _caller_logs(service: str, failure: str) -> list[LogRecord]:
    """A steady stream of ordinary lines, and after the fault one error line per request that fails."""
    out: list[LogRecord] = []
    for i in range(N * 4):
        t = i * STEP / 4
        out.append(LogRecord(timestamp=t, service=service, message=f"GET /items 200 {i % 7} ms"))
        if t >= FAULT * STEP:
            out.append(LogRecord(timestamp=t + 0.1, service=service, level="error", message=failure))
    return out


def test_a_stopped_store_explains_its_callers_directly_and_through_others() -> None:
    # frontend -> cart -> redis; redis stops. Its only evidence is its target health, while cart and
    # frontend pile up error ratios and error lines far above it. Both are its victims: the store
    # ranks first (before, cart ranked first: redis was not "at least 0.6 as anomalous" as cart).
    down = [1.0] * FAULT + [0.0] * (N - FAULT)
    failing = _wiggle(0.5, 0.1)[:FAULT] + [60.0 + (i % 3) for i in range(N - FAULT)]
    metrics = [
        _series("redis", "up", down),
        _series("cart", "up", [1.0] * N),
        _series("cart", "error_percent", failing),
        _series("frontend", "up", [1.0] * N),
        _series("frontend", "error_percent", [v * 1.5 for v in failing]),
    ]
    logs = _caller_logs("cart", "redis unavailable: Error 111 connecting to redis:6379. Connection refused.")
    logs += _caller_logs("frontend", "cart answered 500 to GET /cart")
    bundle = _bundle(metrics, FAULT + 6)
    bundle.logs = logs
    bundle.topology = Topology(
        services=["frontend", "cart", "redis"],
        edges=[Edge(caller="frontend", callee="cart"), Edge(caller="cart", callee="redis")],
    )
    suspects = rank_suspects(bundle)
    assert [s.service for s in suspects][:1] == ["redis"]
    assert suspects[0].fault_type is FaultType.UNAVAILABLE
    for victim in suspects[1:3]:
        assert victim.service in {"cart", "frontend"}
        assert any(
            e.summary == "depends on redis, which went down: a victim of that outage" for e in victim.evidence
        )

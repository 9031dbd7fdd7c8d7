"""A callers' view of a service's fault (a balancer in front of it) is placed below the service
(analysis/propagate.py, ``caller_views``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.domain import Alert, Edge, EvidenceBundle, Incident, MetricSeries, TimeWindow, Topology
from opsagent.domain.signals import classify_signal

STEP = 60.0
N = 60
FAULT = 40  # index of the first sample after the fault


def _series(service: str, signal: str, values: list[float]) -> MetricSeries:
    return MetricSeries(
        service=service,
        signal=signal,
        kind=classify_signal(signal),
        timestamps=[i * STEP for i in range(N)],
        values=values,
    )


def _step(level: float, amplitude: float, after: float, phase: int = 0) -> list[float]:
    """A wiggling level that moves to ``after`` at FAULT."""
    return [(after if i >= FAULT else level) + amplitude * (((i + phase) * 7) % 5 - 2) for i in range(N)]


def _bundle(balancer_requests: float) -> EvidenceBundle:
    """frontend calls search directly and through a balancer the recording sees as a leaf; search is
    slow. The balancer's latency is search's plus a hop, on its share of the requests, and is
    steadier than search's own, so it stands out more."""
    metrics = [
        _series("frontend", "requests", [100.0] * N),
        _series("frontend", "latency_average_seconds", _step(0.10, 0.002, 0.30)),
        _series("search", "requests", [700.0] * N),
        _series("search", "latency_average_seconds", _step(0.010, 0.002, 0.25, 1)),
        _series("balancer", "requests", [balancer_requests] * N),
        _series("balancer", "latency_average_seconds", _step(0.012, 0.0005, 0.26, 2)),
        _series("db", "requests", [700.0] * N),
        _series("db", "latency_average_seconds", _step(0.003, 0.0005, 0.003, 3)),
    ]
    alert_at = datetime.fromtimestamp(FAULT * STEP, UTC)
    incident = Incident(
        id="inc-views",
        title="frontend latency",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp((N - 1) * STEP, UTC)
        ),
        alert_time=alert_at,
        alerts=[
            Alert(fingerprint="f", name="HighLatency", labels={"service": "frontend"}, starts_at=alert_at)
        ],
    )
    topology = Topology(
        services=["frontend", "search", "balancer", "db"],
        edges=[
            Edge(caller="frontend", callee="search"),
            Edge(caller="frontend", callee="balancer"),
            Edge(caller="search", callee="db"),
        ],
    )
    return EvidenceBundle(incident=incident, metrics=metrics, topology=topology)


def _off() -> EngineOptions:
    return replace(DEFAULT_OPTIONS, propagate=replace(DEFAULT_OPTIONS.propagate, caller_views=False))


def test_the_balancer_outranks_the_service_without_the_rule() -> None:
    assert rank_suspects(_bundle(50.0), _off())[0].service == "balancer"


def test_the_service_behind_its_callers_view_ranks_first() -> None:
    ranked = rank_suspects(_bundle(50.0))
    assert [s.service for s in ranked[:2]] == ["search", "balancer"]
    assert any("a view of that service" in e.summary for e in ranked[1].evidence)


def test_a_view_that_carries_more_than_the_service_is_not_one() -> None:
    # the balancer's excess is larger than search's: search cannot account for it
    assert rank_suspects(_bundle(5000.0))[0].service == "balancer"

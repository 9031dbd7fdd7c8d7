"""Call edges that went silent (analysis/calls.py) and how the engine ranks and types them."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from opsagent.analysis.calls import stopped_calls
from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.domain import EvidenceBundle, FaultType, Incident, MetricSeries, SignalKind, TimeWindow

STEP = 60.0
NORMAL = 20  # minutes before the alert
ALERT = NORMAL * STEP
MINUTES = NORMAL + 8
NAN = math.nan


def _edge(caller: str, callee: str, silent: set[int], rate: bool = False) -> MetricSeries:
    """A per-minute edge series: latency with no value (or a rate of 0) in the ``silent`` minutes."""
    busy = 3.0 if rate else 0.004
    idle = 0.0 if rate else NAN
    return MetricSeries(
        service=caller,
        peer=callee,
        signal="call_rate_per_second" if rate else "call_latency_p50_seconds",
        kind=SignalKind.TRAFFIC if rate else SignalKind.LATENCY,
        timestamps=[i * STEP for i in range(MINUTES)],
        values=[idle if i in silent else busy for i in range(MINUTES)],
    )


STOPPED = {NORMAL + 1, NORMAL + 2, NORMAL + 3}  # three minutes without calls, just after the alert


def _calls(stopped_caller_called: bool = True, rate: bool = False) -> list[MetricSeries]:
    """frontend -> checkout -> {email, payment, cart}; checkout stops calling email and payment.

    Unless ``stopped_caller_called``: then frontend stops calling checkout for the incident's first
    five minutes, and checkout's calls stop with it.
    """
    inbound_silent = set(range(NORMAL, NORMAL + 5)) if not stopped_caller_called else set()
    return [
        _edge("frontend", "checkout", inbound_silent, rate),
        _edge("checkout", "email", STOPPED, rate),
        _edge("checkout", "payment", STOPPED, rate),
        _edge("checkout", "cart", inbound_silent, rate),
    ]


def _periods() -> tuple[tuple[float, float], tuple[float, float]]:
    return (0.0, ALERT), (ALERT, ALERT + 5 * STEP)


def test_edges_that_stop_while_their_caller_is_called_are_one_event_of_the_caller() -> None:
    found = stopped_calls(_calls(), *_periods())
    assert len(found) == 1
    (event,) = found
    assert (event.service, event.kind, event.key) == ("checkout", "edge", "email, payment")
    # 40 active samples before; 10 samples in the incident's five minutes, 4 of them with calls
    assert (event.normal_count, event.incident_count) == (40, 4)
    assert event.z <= -3.0 and event.relative_ratio <= 0.5
    assert event.first_seen == (NORMAL + 1) * STEP


def test_rate_series_read_zero_as_no_calls() -> None:
    found = stopped_calls(_calls(rate=True), *_periods())
    assert [(e.service, e.key) for e in found] == [("checkout", "email, payment")]


def test_edges_that_stop_because_their_caller_stopped_being_called_are_lost_traffic() -> None:
    # checkout's own calls stop because it is not called: not its fault; frontend's stopped call is
    found = stopped_calls(_calls(stopped_caller_called=False), *_periods())
    assert [e.service for e in found] == ["frontend"]


def test_one_silent_minute_is_not_enough() -> None:
    series = [_edge("frontend", "checkout", set()), _edge("checkout", "email", {NORMAL + 1})]
    assert stopped_calls(series, *_periods()) == []


def test_an_edge_that_was_often_silent_before_is_not_evidence() -> None:
    before = set(range(0, NORMAL, 2))  # silent every other minute in the normal period
    series = [_edge("frontend", "checkout", set()), _edge("checkout", "email", before | STOPPED)]
    assert stopped_calls(series, *_periods()) == []


def _bundle(metrics: list[MetricSeries]) -> EvidenceBundle:
    incident = Incident(
        id="rec-calls",
        title="t",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(MINUTES * STEP, UTC)
        ),
        alert_time=datetime.fromtimestamp(ALERT, UTC),
    )
    return EvidenceBundle(incident=incident, metrics=metrics)


def _noise(service: str, seed: int) -> MetricSeries:
    """A CPU series with ordinary wobble and no incident."""
    values = [20.0 + ((i * 7 + seed * 3) % 5) * 0.4 for i in range(MINUTES)]
    return MetricSeries(
        service=service,
        signal="cpu_utilisation_percent",
        kind=SignalKind.CPU,
        unit="percent",
        timestamps=[i * STEP for i in range(MINUTES)],
        values=values,
    )


def test_the_engine_ranks_the_caller_whose_calls_stopped_as_a_code_fault() -> None:
    services = ("frontend", "checkout", "email", "payment", "cart")
    bundle = _bundle(_calls() + [_noise(s, i) for i, s in enumerate(services)])
    suspects = rank_suspects(bundle)
    top = suspects[0]
    assert top.service == "checkout" and top.fault_type is FaultType.ERRORS_CODE
    summaries = [item.summary for item in top.evidence]
    assert any("calls to email, payment went silent" in s and "a code path stopped" in s for s in summaries)
    # edge series are read for silence only: they add no latency evidence of their own
    assert not any(item.signal == "call_latency_p50_seconds" for s in suspects for item in s.evidence)
    off = rank_suspects(bundle, DEFAULT_OPTIONS.with_(stopped_calls=False))
    assert not any("went silent" in item.summary for s in off for item in s.evidence)
    assert not (off[0].service == "checkout" and off[0].fault_type is FaultType.ERRORS_CODE)

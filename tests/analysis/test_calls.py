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


# A live system's edges are rates over a trailing window, sampled every 5 s.
FINE = 5.0
WINDOW = 60.0  # rate(...[1m])
STOP = 600.0  # the calls stop ten minutes in
SEEN = STOP + 85.0  # the alert's investigation reads up to 85 s after it (a for: of one minute)


def _rate(
    caller: str,
    callee: str | None,
    level: float,
    stop: float | None = None,
    to: float = 0.0,
    until: float = SEEN,
) -> MetricSeries:
    """A call rate of ``level`` per second (``callee`` None: the service's own requests), as a rate
    over WINDOW reads it: when the calls fall to ``to`` times the level at ``stop``, the series
    moves there linearly over the window, not at once."""
    ts = [i * FINE for i in range(int(until / FINE) + 1)]

    def value(t: float) -> float:
        if stop is None or t <= stop:
            return level * (1.0 + 0.05 * ((int(t / FINE) * 7) % 3 - 1))
        return level * max(to, 1.0 - (1.0 - to) * (t - stop) / WINDOW)

    return MetricSeries(
        service=caller,
        peer=callee,
        signal="call_rate_per_second" if callee else "requests_per_second",
        kind=SignalKind.TRAFFIC,
        timestamps=ts,
        values=[value(t) for t in ts],
    )


def _live_periods() -> tuple[tuple[float, float], tuple[float, float]]:
    return (0.0, STOP), (STOP, SEEN)


def test_a_call_rate_that_decays_over_its_window_counts_as_stopped_from_half_its_level() -> None:
    # The frontend (an entry point) stops calling cart and catalog; its rate series need a minute to
    # reach zero, so only the last 25 s read zero: too few samples, read as "any value is a call".
    series = [_rate("frontend", "cart", 3.0, stop=STOP), _rate("frontend", "catalog", 3.0, stop=STOP)]
    found = stopped_calls(series, *_live_periods())
    assert [(e.service, e.key) for e in found] == [("frontend", "cart, catalog")]
    (event,) = found
    # silent from half the level on: 30 s into the window's decay
    assert event.first_seen is not None and STOP + 25.0 <= event.first_seen <= STOP + 35.0
    assert event.z <= -3.0 and event.relative_ratio <= 0.5


def test_calls_that_fall_with_their_callers_traffic_are_lost_traffic_not_a_stop() -> None:
    # Half the users went away for five minutes: the frontend (an entry point, its own request rate
    # recorded) calls checkout half as often, and checkout calls payment half as often; checkout's
    # calls to email stopped. Only the stop is a code path: the rest fell with their caller's traffic.
    end = STOP + 300.0
    series = [
        _rate("frontend", None, 4.0, stop=STOP, to=0.5, until=end),
        _rate("frontend", "checkout", 2.0, stop=STOP, to=0.5, until=end),
        _rate("checkout", "payment", 1.0, stop=STOP, to=0.5, until=end),
        _rate("checkout", "email", 1.0, stop=STOP, until=end),
    ]
    periods = (0.0, STOP), (STOP, end)
    assert [(e.service, e.key) for e in stopped_calls(series, *periods)] == [("checkout", "email")]
    # without the frontend's own request rate its calls are read against their own level: at half
    # of it for four of the five minutes, they read as stopped
    alone = series[1:]
    assert ("frontend", "checkout") in [(e.service, e.key) for e in stopped_calls(alone, *periods)]

"""Call edges that went silent (analysis/calls.py) and how the engine ranks and types them."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from opsagent.analysis.calls import silence_onset, stopped_calls
from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.explain import explain
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.prepare import Prepared
from opsagent.analysis.propagate import Placement, propagate
from opsagent.analysis.series import ServiceEvidence
from opsagent.analysis.split import incident_split
from opsagent.domain import EvidenceBundle, FaultType, Incident, MetricSeries, SignalKind, TimeWindow

from ..support.scored_evidence import make_slow

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


def test_an_entry_point_whose_users_went_away_has_not_stopped_its_calls() -> None:
    # Nobody used the shop for five minutes: the frontend's own requests, and its calls with them,
    # fell to zero. Its calls have no inbound edge to say it was not called: its own request count
    # says so.
    end = STOP + 300.0
    users_gone = [
        _rate("frontend", None, 4.0, stop=STOP, until=end),
        _rate("frontend", "checkout", 2.0, stop=STOP, until=end),
        _rate("frontend", "catalog", 2.0, stop=STOP, until=end),
    ]
    periods = (0.0, STOP), (STOP, end)
    assert stopped_calls(users_gone, *periods) == []
    # the same calls stopping while the users kept coming is a stopped code path
    users_stay = [_rate("frontend", None, 4.0, until=end), *users_gone[1:]]
    assert [(e.service, e.key) for e in stopped_calls(users_stay, *periods)] == [
        ("frontend", "catalog, checkout")
    ]


# An early exit in checkout: it stops calling inventory at STOP while the frontend keeps calling it;
# the alert fires 80 s later, after one minute of silence (``for: 1m``) and a scrape.
ALERT_LIVE = STOP + 80.0
SEARCH = (ALERT_LIVE - 240.0, ALERT_LIVE)


def _early_exit(resumes: bool = False, caller_stops: bool = False) -> list[MetricSeries]:
    """frontend (an entry point, its requests recorded) -> checkout -> inventory; checkout stops
    calling inventory at STOP. ``caller_stops``: the frontend stops calling checkout at STOP instead,
    and checkout's calls to inventory stop with it."""
    checkout_calls = _rate("checkout", "inventory", 1.0, stop=STOP)
    if resumes:  # the calls come back before the investigation reads the data
        checkout_calls.values[-3:] = [1.0, 1.0, 1.0]
    return [
        _rate("frontend", None, 2.0),
        _rate("frontend", "checkout", 1.0, stop=STOP if caller_stops else None),
        checkout_calls,
    ]


def test_a_call_edge_that_went_silent_for_good_dates_the_stop() -> None:
    onset = silence_onset(_early_exit(), 0.0, SEARCH, SEEN)
    # the first sample at half the edge's normal share: 30 s into its rate window's decay
    assert onset is not None and STOP + 25.0 <= onset <= STOP + 35.0


def test_a_silence_that_ended_dates_nothing() -> None:
    assert silence_onset(_early_exit(resumes=True), 0.0, SEARCH, SEEN) is None


def test_calls_that_stopped_with_their_callers_traffic_date_their_callers_stop() -> None:
    series = _early_exit(caller_stops=True)
    onset = silence_onset(series, 0.0, SEARCH, SEEN)
    assert onset is not None and STOP + 25.0 <= onset <= STOP + 35.0
    # dated there, the stop is the frontend's; checkout's silent calls are its lost traffic
    found = stopped_calls(series, (0.0, onset), (onset, SEEN))
    assert [(e.service, e.key) for e in found] == [("frontend", "checkout")]


def test_a_silence_that_began_before_the_search_range_dates_nothing() -> None:
    assert silence_onset(_early_exit(), 0.0, (STOP + 60.0, ALERT_LIVE), SEEN) is None


def _live_bundle(metrics: list[MetricSeries]) -> EvidenceBundle:
    incident = Incident(
        id="rec-early-exit",
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(SEEN, UTC)),
        alert_time=datetime.fromtimestamp(ALERT_LIVE, UTC),
    )
    return EvidenceBundle(incident=incident, metrics=metrics)


def test_a_stopped_call_edge_splits_the_incident_where_no_metric_moved() -> None:
    bundle = _live_bundle(_early_exit())
    split = incident_split(bundle)
    assert STOP + 25.0 <= split.normal_end <= STOP + 35.0 and split.detected
    # the events (call edges among them) follow it: the whole silence is the incident's
    assert split.event_split == split.normal_end
    assert [
        (e.service, e.key)
        for e in stopped_calls(bundle.metrics, (0.0, split.event_split), (split.event_split, SEEN))
    ] == [("checkout", "inventory")]
    # without it, nothing dates the incident: the fixed split comes later and counts the first
    # silent samples as normal
    off = incident_split(bundle, DEFAULT_OPTIONS.with_(silence_onset=False))
    assert not off.detected and off.event_split > STOP + 35.0


def _placed(options: EngineOptions = DEFAULT_OPTIONS, slow_email: bool = False) -> Placement:
    """checkout stopped calling email and payment (its edges' own event); each callee lost that
    traffic, which scores it higher than checkout's event (its request lines stopped with it)."""
    (edge,) = stopped_calls(_calls(), *_periods())
    evidence = {"checkout": ServiceEvidence(patterns=[edge], channels={"pattern": edge.score})}
    for callee in ("email", "payment"):
        evidence[callee] = ServiceEvidence(channels={"pattern": 2.0 * edge.score})
    if slow_email:
        make_slow(evidence["email"], "email", 3.0)
    callees = {"frontend": {"checkout"}, "checkout": {"email", "payment", "cart"}}
    prepared = Prepared(series=[], step=STEP, alert=ALERT, alert_known=True, callees=callees)
    scores = {svc: max(ev.channels.values()) for svc, ev in evidence.items()}
    return propagate(prepared, evidence, scores, options)


def test_callees_the_caller_stopped_calling_do_not_explain_it() -> None:
    # an early exit leaves the callees without the caller's requests: by the callee rule they would
    # explain the one service that stopped calling them (the live lab's checkout, seed 61)
    placement = _placed()
    assert placement.silenced == {"checkout": {"email", "payment"}}
    assert "checkout" not in placement.explained_by
    assert _placed(DEFAULT_OPTIONS.with_(silenced_callees=False)).explained_by["checkout"] in {
        "email",
        "payment",
    }
    # a callee whose latency leads answered slowly, which a caller can give up calling: it still explains
    assert _placed(slow_email=True).explained_by["checkout"] == "email"


def test_the_report_names_the_callees_the_caller_stopped_calling() -> None:
    (edge,) = stopped_calls(_calls(), *_periods())
    placement = _placed()
    placement.callers = {"checkout": {"frontend"}}
    evidence = {"checkout": ServiceEvidence(patterns=[edge], channels={"pattern": edge.score})}
    (checkout,) = explain(evidence, {"checkout": 1.0}, placement, {}, DEFAULT_OPTIONS)
    where = next(e.summary for e in checkout.evidence if e.id == "topology:checkout")
    assert where.endswith("(it stopped calling email, payment: their lost traffic is its doing)"), where

"""Call edges that went silent: a service that stopped calling another while its own requests kept coming.

A code fault in a service that sits in the middle of a call chain (an exception thrown half-way
through a handler, a changed return value that ends a checkout early) often moves no metric of its
own and, where the service logs nothing, leaves no log line either. What it does change is *which
calls it makes*: the calls after the failing step stop. Per-edge call metrics (a service mesh's
request rate per source and destination, or a per-edge latency that has no value in a sample with
no calls) show this directly.

So, per call edge ``caller -> callee``, the samples in which the edge carried no call are counted in
the normal period and in the incident (a call *rate* is a mean over a trailing window, and takes
that window to reach zero after the calls stop: a rate sample counts as silent once it is at most
1 / ``MIN_RATE_RATIO`` of the edge's normal share of its caller's traffic, ``_rate_activity``), over
the samples in which the caller itself was being called (its inbound edges carried calls; for an
entry point, with no inbound edge series, its own request count was above zero; one without a
request series counts every sample). An edge that goes silent because
its caller stopped receiving requests is lost traffic, not a fault of the caller, and is not
counted. The test is the conditional binomial of the other event counts (``patterns.binomial_z``):
given the silent samples of both periods, are the incident's more than its share of the samples? An
edge must be active at most half as often as before (``patterns.stopped_code_path``) and the silence
must pass ``patterns.MIN_Z``.

A silent edge is reported as a pattern event of the caller (kind ``edge``) and weighs as a stopped
code path: as an error event that fell.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsagent.analysis.events import (
    DECREASE_WEIGHT,
    MIN_RATE_RATIO,
    MIN_Z,
    PRIOR,
    PatternShift,
    binomial_z,
    stopped_code_path,
)
from opsagent.analysis.traffic import is_request_count, summed_by_time
from opsagent.domain import MetricSeries, SignalKind

_Activity = dict[float, bool]


@dataclass(frozen=True)
class _Stopped:
    """One stopped edge of a caller: samples and silent samples in each period."""

    callee: str
    normal: tuple[int, int]
    incident: tuple[int, int]
    first_silent: float | None


def _activity(series: MetricSeries) -> _Activity:
    """Per sample time, whether the edge carried calls (a positive value; no value is no call)."""
    vs = np.asarray(series.values, dtype=np.float64)
    active: npt.NDArray[np.bool_] = np.isfinite(vs) & (vs > 0)
    return dict(zip(series.timestamps, active.tolist(), strict=True))


def _merge(into: _Activity, more: _Activity) -> None:
    for t, active in more.items():
        into[t] = into.get(t, False) or active


@dataclass(frozen=True)
class _CallGraph:
    """What reading the edges needs that does not depend on the split, built once per reading.

    ``rates`` and ``latencies``: each edge's call-rate series and its other series (latency);
    ``traffic``: per service, the traffic it receives at each sample time; ``called``: per service,
    whether it was being called at each sample time (``_called``).
    """

    rates: dict[tuple[str, str], list[MetricSeries]]
    latencies: dict[tuple[str, str], list[MetricSeries]]
    traffic: dict[str, dict[float, float]]
    called: dict[str, _Activity]


def _graph(metrics: list[MetricSeries]) -> _CallGraph:
    """The edges' series, and each service's traffic and when it was called, from ``metrics``."""
    rates: dict[tuple[str, str], list[MetricSeries]] = defaultdict(list)
    latencies: dict[tuple[str, str], list[MetricSeries]] = defaultdict(list)
    own: dict[str, list[MetricSeries]] = defaultdict(list)
    for m in metrics:
        if m.peer is not None and m.peer != m.service:
            (rates if m.kind is SignalKind.TRAFFIC else latencies)[(m.service, m.peer)].append(m)
        elif m.peer is None and is_request_count(m):
            own[m.service].append(m)
    requests = {service: summed_by_time(series) for service, series in own.items()}
    traffic = _traffic_of(rates, requests) if rates else {}
    return _CallGraph(rates, latencies, traffic, _called([*rates.items(), *latencies.items()], requests))


def _traffic_of(
    rates: dict[tuple[str, str], list[MetricSeries]], requests: dict[str, dict[float, float]]
) -> dict[str, dict[float, float]]:
    """Per service, the traffic it receives at each sample time: the summed call rate of its inbound
    edges, or, for a service no recorded rate edge calls (an entry point), its own request count
    (``requests``, ``traffic.request_counts``'s)."""
    inbound: dict[str, list[MetricSeries]] = defaultdict(list)
    for (_, callee), series in rates.items():
        inbound[callee].extend(series)
    own = {service: counts for service, counts in requests.items() if service not in inbound}
    return {**{service: summed_by_time(series) for service, series in inbound.items()}, **own}


def _rate_activity(
    series: MetricSeries, traffic: dict[float, float] | None, normal: tuple[float, float]
) -> _Activity:
    """Per sample time, whether a call-rate edge carried more than 1 / ``MIN_RATE_RATIO`` of its
    normal share of its caller's traffic (``_traffic_of``; without any, of its own level).

    A rate over a trailing window decays for the whole window after the calls stop (a minute for
    ``rate(...[1m])``): read as "any value is a call", an edge that stopped 85 s before the alert
    shows only the last 25 s as silent, too few samples to count. At half its level the window held
    at most half the calls, the bar a stopped code path must pass anyway. Measured as a share of the
    caller's own traffic, so that an edge does not go "silent" because its caller lost requests (a
    victim of an upstream fault), which is what the "caller was called" test does for a full stop.
    """
    vs = np.asarray(series.values, dtype=np.float64)
    ts = np.asarray(series.timestamps, dtype=np.float64)
    if traffic is not None:
        calls = np.fromiter((traffic.get(t, math.nan) for t in series.timestamps), np.float64, ts.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            vs = np.where(calls > 0, vs / calls, math.nan)
    in_normal = (ts >= normal[0]) & (ts < normal[1]) & np.isfinite(vs) & (vs > 0)
    if not in_normal.any():
        return _activity(series)
    floor = float(np.median(vs[in_normal])) / MIN_RATE_RATIO
    # no traffic at a sample reads as silent; ``_counts`` leaves that sample out, as the caller was
    # not called in it (``_called``)
    active: npt.NDArray[np.bool_] = np.isfinite(vs) & (vs > floor)
    return dict(zip(series.timestamps, active.tolist(), strict=True))


def _edges(graph: _CallGraph, normal: tuple[float, float]) -> dict[tuple[str, str], _Activity]:
    """Each call edge's activity. An edge with call-rate series is read from those alone
    (``_rate_activity``); several series of one edge merge by "any". A latency series says only
    whether there were calls, and over a window that outlasts them: it decides only where no rate
    is recorded."""
    out: dict[tuple[str, str], _Activity] = defaultdict(dict)
    for edge, series in graph.rates.items():
        for m in series:
            _merge(out[edge], _rate_activity(m, graph.traffic.get(edge[0]), normal))
    for edge, series in graph.latencies.items():
        if edge not in graph.rates:
            for m in series:
                _merge(out[edge], _activity(m))
    return out


def _called(
    edges: list[tuple[tuple[str, str], list[MetricSeries]]], requests: dict[str, dict[float, float]]
) -> dict[str, _Activity]:
    """Per service, whether it was being called at each sample time, from every edge's series
    (``edges``, grouped by edge) and the services' own request counts.

    A callee: whether any of its inbound edges carried calls (any value of any of their series: a
    caller whose calls fell but did not stop is still called). An entry point (no inbound edge): whether
    its own request count (``requests``) was above zero, so that its calls going quiet because its
    users went away are not read as a stopped code path. A service with neither has no such test:
    every sample counts.
    """
    out: dict[str, _Activity] = defaultdict(dict)
    for (_, callee), series in edges:
        for m in series:
            _merge(out[callee], _activity(m))
    for service, counts in requests.items():
        if service not in out:
            out[service] = {t: v > 0 for t, v in counts.items()}
    return out


def _counts(activity: _Activity, called: _Activity | None, start: float, end: float) -> tuple[int, int]:
    """(samples in [start, end) in which the caller was called, of those the edge's silent ones)."""
    samples = silent = 0
    for t, active in activity.items():
        if start <= t < end and (called is None or called.get(t, False)):
            samples += 1
            silent += not active
    return samples, silent


def _active_ratio(n0: int, s0: int, n1: int, s1: int) -> float:
    """The incident's share of active samples over the normal period's (add-half smoothed)."""
    return ((n1 - s1 + PRIOR) / n1) / ((n0 - s0 + PRIOR) / n0)


def stopped_calls(
    metrics: Iterable[MetricSeries], normal: tuple[float, float], incident: tuple[float, float]
) -> list[PatternShift]:
    """Per caller, the call edges that went silent while it kept being called, strongest first.

    ``normal`` and ``incident`` are [start, end) intervals of sample times. An edge stopped when its
    share of active samples fell at least ``MIN_RATE_RATIO`` times. A caller's stopped edges are
    one code path (the calls after the step that fails), so their samples are pooled into one
    test and one event: two calls that stopped together are more evidence than one, and one
    event per caller keeps a handler with many calls from outvoting one with few.
    """
    return _stops(_graph(list(metrics)), normal, incident)


def _stops(
    graph: _CallGraph, normal: tuple[float, float], incident: tuple[float, float]
) -> list[PatternShift]:
    """``stopped_calls`` on a graph already built."""
    stopped: dict[str, list[_Stopped]] = defaultdict(list)
    for (caller, callee), activity in sorted(_edges(graph, normal).items()):
        called = graph.called.get(caller)
        n0, s0 = _counts(activity, called, *normal)
        n1, s1 = _counts(activity, called, *incident)
        if n0 and n1 and stopped_code_path(_active_ratio(n0, s0, n1, s1)):
            silent = [t for t, a in activity.items() if incident[0] <= t < incident[1] and not a]
            stopped[caller].append(_Stopped(callee, (n0, s0), (n1, s1), min(silent, default=None)))
    out: list[PatternShift] = []
    for caller, found in stopped.items():
        n0, s0 = (sum(f.normal[i] for f in found) for i in (0, 1))
        n1, s1 = (sum(f.incident[i] for f in found) for i in (0, 1))
        z = binomial_z(s1 + PRIOR, s0 + PRIOR, n1 / (n0 + n1))
        if z < MIN_Z:
            continue
        firsts = [f.first_silent for f in found if f.first_silent is not None]
        out.append(
            PatternShift(
                service=caller,
                kind="edge",
                key=", ".join(f.callee for f in found),
                normal_count=n0 - s0,
                incident_count=n1 - s1,
                expected=(n0 - s0) * n1 / n0,
                z=-z,
                score=math.log1p(z) * DECREASE_WEIGHT,
                error=False,
                first_seen=min(firsts, default=None),
                relative_ratio=_active_ratio(n0, s0, n1, s1),
                silenced=frozenset(f.callee for f in found),
            )
        )
    out.sort(key=lambda s: (-s.score, s.service, s.key))
    return out


def silence_onset(
    metrics: Iterable[MetricSeries], start: float, search: tuple[float, float], end: float
) -> float | None:
    """The earliest time in ``search`` from which a caller's call edge stayed silent to ``end`` while
    the caller kept being called, if ``stopped_calls`` finds that stop with the split there.

    A stopped code path (an early exit, calls cut off after a failing step) moves no metric of the
    caller's own: the metrics' change point can then fall on a later side effect (the caller's
    callers noticing), which counts the first silent samples as normal and hides the stop. This
    dates it the way a stopped log statement dates the events. Normal shares come from before the
    search range, as the metrics' preliminary normal period does.
    """
    graph = _graph(list(metrics))
    candidates: set[float] = set()
    for (caller, _), activity in _edges(graph, (start, search[0])).items():
        called = graph.called.get(caller)
        first: float | None = None
        for t in sorted((t for t in activity if t < end), reverse=True):
            if called is not None and not called.get(t, False):
                continue
            if activity[t]:
                break
            first = t
        if first is not None and search[0] <= first <= search[1]:
            candidates.add(first)
    for t in sorted(candidates):
        if _stops(graph, (start, t), (t, end)):
            return t
    return None

"""Stage 1, prepare: every signal of the bundle as an array on one footing (``PreparedSeries``).

Metric series and the per-service self-time and error-share series condensed from the spans become
finite arrays with the unit family their scale floors come from, the direction that counts as worse
and the weight of their signal kind. Latency sentinels, error shares of idle moments and constant
series are dropped here, so no later stage has to know about them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from opsagent.analysis.options import EngineOptions
from opsagent.analysis.scoring import LATENCY_CEILING_SECONDS, direction, unit_family
from opsagent.analysis.series import PreparedSeries
from opsagent.analysis.traces import trace_series
from opsagent.analysis.traffic import aligned_requests, idle_times, request_counts
from opsagent.domain import EvidenceBundle, SignalKind
from opsagent.domain.signals import is_client_side

# Fewest points a series needs on each side of a split to say anything.
MIN_SERIES_POINTS = 4
# Weight of a signal kind as root-cause evidence. Traffic moves in victims as much as in causes
# (a failing callee drops its callers' downstream calls), host-level and unclassified signals are
# shared or ambiguous: they count, but less than the kinds a fault moves in the faulty service.
KIND_WEIGHT: dict[SignalKind, float] = {
    SignalKind.TRAFFIC: 0.5,
    SignalKind.OTHER: 0.5,
    SignalKind.NETWORK: 0.7,
    SignalKind.SATURATION: 0.8,
}
# A signal about the host node rather than the service's own container (same value for every
# service on that node) says little about which service is at fault.
HOST_WEIGHT = 0.5
HOST_PREFIXES = ("node", "host")
# A client-side latency (the time a service waits for the services it calls, ``signals.is_client_side``)
# measures its callees, not itself: it is scored (the report shows it) but kept out of the service's
# own channels, fault type and onset, as source "client". CLIENT_WEIGHT scales its shown score.
CLIENT_WEIGHT = 0.5


@dataclass(frozen=True)
class Prepared:
    """What every later stage reads: the series, the sampling step, the alert and the call graph."""

    series: list[PreparedSeries]
    step: float
    # the alert time; without one, three quarters into the window (``alert_known`` says which)
    alert: float
    alert_known: bool
    # caller -> its callees: the topology's edges and those seen in spans (``call_graph``); read by
    # the weigh stage (a fault's callers are not independent outliers) and the propagate stage
    callees: dict[str, set[str]]

    @cached_property
    def last_sample(self) -> float | None:
        """The time of the latest sample of any series (None without samples); read by every
        reader of the split's bounds, computed once."""
        return max((float(s.ts[-1]) for s in self.series if s.ts.size), default=None)


def kind_weight(signal: str, kind: SignalKind) -> float:
    w = KIND_WEIGHT.get(kind, 1.0)
    if signal.lower().startswith(HOST_PREFIXES):
        w *= HOST_WEIGHT
    if kind is SignalKind.LATENCY and is_client_side(signal):
        w *= CLIENT_WEIGHT
    return w


def sampling_step(bundle: EvidenceBundle) -> float:
    """The metrics' sampling interval (median over series), at least one second."""
    steps = [
        float(np.median(np.diff(m.timestamps[:200]))) for m in bundle.metrics[:50] if len(m.timestamps) > 2
    ]
    return max(float(np.median(steps)), 1.0) if steps else 60.0


def alert_time(bundle: EvidenceBundle) -> float:
    inc = bundle.incident
    start, end = inc.window.start_s, inc.window.end_s
    return inc.alert_time.timestamp() if inc.alert_time else start + (end - start) * 0.75


def _metric_series(bundle: EvidenceBundle, options: EngineOptions) -> list[PreparedSeries]:
    normalise = options.prepare.kind_normalisation
    out: list[PreparedSeries] = []
    idle = idle_times(bundle)
    counts = request_counts(bundle) if options.weigh.traffic_weighting else {}
    for m in bundle.metrics:
        if m.is_call_edge:
            continue  # a call edge's series: read for silent edges (``calls.stopped_calls``)
        ts = np.asarray(m.timestamps, dtype=np.float64)
        vs = np.asarray(m.values, dtype=np.float64)
        finite = np.isfinite(vs) & np.isfinite(ts)
        if m.kind is SignalKind.ERRORS and m.service in idle:
            # an error share (or availability) of zero requests is undefined, whatever was recorded
            finite &= ~np.isin(ts, idle[m.service])
        if finite.sum() < MIN_SERIES_POINTS:
            continue
        ts, vs = ts[finite], vs[finite]
        family = unit_family(m.signal, m.unit, m.kind)
        if normalise and m.kind is SignalKind.LATENCY:
            ceiling = LATENCY_CEILING_SECONDS * (1000.0 if family == "milliseconds" else 1.0)
            keep = vs < ceiling
            ts, vs = ts[keep], vs[keep]
            if vs.size < MIN_SERIES_POINTS:
                continue
        if np.ptp(vs) == 0.0:
            continue  # a constant series can say nothing
        sign = direction(m.kind, m.signal)
        complement_of: float | None = None
        if m.kind in (SignalKind.ERRORS, SignalKind.UP) and sign < 0:
            # A success rate, availability or target health: score its complement, the error (or
            # down) share, so the floors and the relative scale are those of the (small) error
            # level, not of ~100%.
            complement_of = 100.0 if family == "error_percent" else 1.0
            vs = complement_of - vs
            sign = 1
        requests = aligned_requests(counts.get(m.service), ts) if m.kind is SignalKind.ERRORS else None
        out.append(
            PreparedSeries(
                id=m.id,
                service=m.service,
                signal=m.signal,
                kind=m.kind,
                family=family,
                source="client" if m.kind is SignalKind.LATENCY and is_client_side(m.signal) else "metric",
                ts=ts,
                vs=vs,
                sign=sign,
                weight=kind_weight(m.signal, m.kind) if normalise else 1.0,
                requests=requests,
                complement_of=complement_of,
            )
        )
    return out


def call_graph(bundle: EvidenceBundle, span_edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    """Each caller's callees: the topology's edges (self-calls left out) and the edges seen in spans."""
    callees: dict[str, set[str]] = defaultdict(set)
    for e in bundle.topology.edges:
        if e.caller != e.callee:
            callees[e.caller].add(e.callee)
    for caller, callee in span_edges:
        callees[caller].add(callee)
    # a plain dict: the stages that share it only read it, and a lookup must not add a key
    return dict(callees)


def prepare(bundle: EvidenceBundle, options: EngineOptions) -> Prepared:
    """The bundle's series, ready to split and score, and the call graph."""
    step = sampling_step(bundle)
    out = _metric_series(bundle, options)
    derived, span_edges = trace_series(bundle.spans, bundle.incident.window.start_s, step)
    for t in derived if options.prepare.traces else []:
        errors = t.signal == "trace_error_share"
        out.append(
            PreparedSeries(
                id=f"trace:{t.service}:{t.signal}",
                service=t.service,
                signal=t.signal,
                kind=SignalKind.ERRORS if errors else SignalKind.LATENCY,
                family="ratio" if errors else "milliseconds",
                source="trace",
                ts=t.timestamps,
                vs=t.values,
            )
        )
    return Prepared(
        series=out,
        step=step,
        alert=alert_time(bundle),
        alert_known=bundle.incident.alert_time is not None,
        callees=call_graph(bundle, span_edges),
    )

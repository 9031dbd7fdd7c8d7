"""Suspect ranking: which services most likely caused the incident, with the evidence for each.

Steps:
1. every metric series, and per-service self-time / error-share series condensed from the spans,
   become arrays on one footing (``PreparedSeries``);
2. the incident's onset is the change point of the system-wide anomaly curve near the alert
   (``onset.py``); before it is the normal period;
3. each series is scored robustly against the normal period (``scoring.py``), weighted by how often
   its kind moves in a cause rather than a victim;
4. log and span events whose share of the traffic changed within the incident's first minutes are
   scored per service (``patterns.py``), against the normal period plus the incident's reference
   period where it has one: errors that rise and statements that stop while their requests continue;
   so are call edges that went silent while their caller kept being called (``calls.py``), and
   handlers whose traces stopped taking steps they took on every request (``handlers.py``);
5. each channel (metrics, traces, patterns) is put on the metric channel's scale and weighed by how
   concentrated it is on one service (``channels.py``); a service's score combines its strongest
   channels;
6. where request counts are recorded, each score is weighed by how much of the alerted symptom the
   service's own excess could account for (``traffic.py``, ``impact.py``);
7. topology: a service whose anomaly an anomalous callee explains is discounted (faults propagate
   from callee to caller), using the bundle's topology plus the call edges seen in spans;
8. the fault type comes from the specific signal kinds that moved first and are still out when the
   alert fires (``faults.py``).

Every suspect carries the evidence that made it rank, as citable ``EvidenceItem``s (``items.py``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from opsagent.analysis.calls import stopped_calls
from opsagent.analysis.channels import calibrate, combine, weigh_by_concentration
from opsagent.analysis.faults import KIND_TO_FAULT, KindEvidence, classify
from opsagent.analysis.handlers import truncated_handlers
from opsagent.analysis.impact import Excess
from opsagent.analysis.items import (
    impact_item,
    log_item,
    pattern_item,
    placement_item,
    series_item,
    victim_item,
)
from opsagent.analysis.logs import TemplateShift, template_shifts
from opsagent.analysis.onset import after_last_gap, anomaly_curve, change_point
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.patterns import (
    PatternShift,
    channel_value,
    pattern_end,
    pattern_shifts,
    pattern_split,
    peer_contrast,
)
from opsagent.analysis.scoring import (
    LATENCY_CEILING_SECONDS,
    MIN_NORMAL,
    ONSET_Z,
    Baseline,
    direction,
    robust_baseline,
    score_arrays,
    signed_z,
    unit_family,
)
from opsagent.analysis.series import PreparedSeries, ScoredSeries
from opsagent.analysis.traces import trace_series
from opsagent.analysis.traffic import aligned_requests, idle_times, impact_weights, request_counts
from opsagent.domain import EvidenceBundle, FaultType, SignalKind, Suspect
from opsagent.domain.signals import is_client_side

FloatArray = npt.NDArray[np.float64]

# Without onset detection the incident window starts this long before the alert, so a fault that
# began before the alert fired is not counted as normal; capped at a quarter of the history so
# some normal period is left.
ALERT_LEAD_SECONDS = 15 * 60
MAX_LEAD_SHARE = 0.25
# Onset search range around the alert: back at most ONSET_MAX_LEAD_SECONDS (an alert's `for:`
# duration plus evaluation interval; searching further finds older, unrelated shifts such as a
# previous incident or a seam in the recording), forward to half the time after it (an alert time
# that is only the nominal start of a fault whose effect shows a few samples later).
# The normal period keeps at least MIN_NORMAL_POINTS.
ONSET_MAX_LEAD_SECONDS = 5 * 60
ONSET_BACK_SHARE = 0.5
ONSET_FORWARD_SHARE = 0.5
MIN_NORMAL_POINTS = 3
# With the recent baseline on, a point must also stray from the median of the last 3 normal points:
# the fewest whose median ignores one outlier, and short enough to follow a level that drifted
# (a normal period recorded apart from the incident, or a previous fault still fading).
RECENT_POINTS = 3
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
# Within the metric channel, a second signal of another kind adds this share of its score.
SECOND_SIGNAL_WEIGHT = 0.1
# A service whose strongest callee is at least this anomalous relative to itself is more likely a
# victim of that callee than a cause; its score is multiplied by VICTIM_DISCOUNT. Below 1: a callee
# needs a good part, not all, of its caller's anomaly, since callers aggregate several callees'
# troubles (and catch and log their failures, which adds error evidence on the caller). Measured on
# the development split (AC@1, Online Boutique / Train Ticket; Sock Shop and PetShop unchanged from 0.5
# to 0.8): 0.8: 0.75/0.43, 0.7: 0.75/0.43, 0.6: 0.79/0.50, 0.5: 0.79/0.46.
PROPAGATION_RATIO = 0.6
VICTIM_DISCOUNT = 0.5
# A callee must itself be anomalous beyond noise (log1p of 3 sd) to explain anything.
MIN_EXPLAINING_SCORE = math.log1p(3.0)
# A service's anomaly starts at the earliest onset among its signals scoring at least this share of
# its strongest: half, so corroborating signals count but a marginal wobble does not date it.
ONSET_SHARE = 0.5
# A service's own resource signal "leads" when it scores at least this share of the service's top
# channel: on the log scale 0.8 is e.g. 55 sd against 150, as strong as its strongest within the spread
# of one service's top signals, not a side effect an order of magnitude weaker.
RESOURCE_SHARE = 0.8
# Fault typing: the "first minute" of a series' move, in which a fault's own resource has made most
# of it (a level shift) while a side effect is still growing: one sample at the coarsest common
# resolution (1 min), a few of the ~10 s updates of finer recordings.
EARLY_SECONDS = 60.0
# Evidence items kept per suspect, by kind.
METRIC_ITEMS = 3
LOG_ITEMS = 2
TRACE_ITEMS = 2
# Changed log/span events kept per suspect (strongest first): enough to show the new error and the
# code path it replaced.
PATTERN_ITEMS = 3


@dataclass(frozen=True)
class Split:
    """The normal period [normal_start, normal_end) and the incident [incident_start, window_end]."""

    normal_start: float
    normal_end: float
    incident_start: float
    window_end: float
    detected: bool = False


@dataclass
class _ServiceEvidence:
    scored: list[ScoredSeries] = field(default_factory=list)
    shifts: list[TemplateShift] = field(default_factory=list)
    channels: dict[str, float] = field(default_factory=dict)
    patterns: list[PatternShift] = field(default_factory=list)


def _kind_weight(signal: str, kind: SignalKind) -> float:
    w = KIND_WEIGHT.get(kind, 1.0)
    lowered = signal.lower()
    if lowered.startswith(HOST_PREFIXES):
        w *= HOST_WEIGHT
    if kind is SignalKind.LATENCY and is_client_side(signal):
        w *= CLIENT_WEIGHT
    return w


def _prepare(
    bundle: EvidenceBundle, options: EngineOptions, step: float
) -> tuple[list[PreparedSeries], set[tuple[str, str]]]:
    """The series to score, and the call edges seen in spans."""
    out: list[PreparedSeries] = []
    span_edges: set[tuple[str, str]] = set()
    idle = idle_times(bundle)
    counts = request_counts(bundle) if options.traffic_weighting else {}
    for m in bundle.metrics:
        if m.is_call_edge:
            continue  # a call edge's series: read for silent edges (``calls.stopped_calls``)
        ts = np.asarray(m.timestamps, dtype=np.float64)
        vs = np.asarray(m.values, dtype=np.float64)
        finite = np.isfinite(vs) & np.isfinite(ts)
        if m.kind is SignalKind.ERRORS and m.service in idle:
            # an error share (or availability) of zero requests is undefined, whatever was recorded
            finite &= ~np.isin(ts, idle[m.service])
        if finite.sum() < MIN_NORMAL_POINTS + 1:
            continue
        ts, vs = ts[finite], vs[finite]
        family = unit_family(m.signal, m.unit, m.kind)
        if options.kind_normalisation and m.kind is SignalKind.LATENCY:
            ceiling = LATENCY_CEILING_SECONDS * (1000.0 if family == "milliseconds" else 1.0)
            keep = vs < ceiling
            ts, vs = ts[keep], vs[keep]
            if vs.size < MIN_NORMAL_POINTS + 1:
                continue
        if np.ptp(vs) == 0.0:
            continue  # a constant series can say nothing
        sign = direction(m.kind, m.signal)
        if m.kind is SignalKind.ERRORS and sign < 0:
            # A success rate or availability: score its complement, the error share, so the floors
            # and the relative scale are those of the (small) error level, not of ~100%.
            vs = (100.0 if family == "error_percent" else 1.0) - vs
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
                weight=_kind_weight(m.signal, m.kind) if options.kind_normalisation else 1.0,
                requests=requests,
            )
        )
    derived, span_edges = trace_series(bundle.spans, bundle.incident.window.start_s, step)
    for t in derived if options.traces else []:
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
    return out, span_edges


def _step(bundle: EvidenceBundle) -> float:
    """The metrics' sampling interval (median over series), at least one second."""
    steps = [
        float(np.median(np.diff(m.timestamps[:200]))) for m in bundle.metrics[:50] if len(m.timestamps) > 2
    ]
    return max(float(np.median(steps)), 1.0) if steps else 60.0


def _alert_time(bundle: EvidenceBundle) -> float:
    inc = bundle.incident
    start, end = inc.window.start_s, inc.window.end_s
    return inc.alert_time.timestamp() if inc.alert_time else start + (end - start) * 0.75


def _fixed_split(bundle: EvidenceBundle) -> Split:
    start, end = bundle.incident.window.start_s, bundle.incident.window.end_s
    alert = _alert_time(bundle)
    lead = min(ALERT_LEAD_SECONDS, MAX_LEAD_SHARE * max(alert - start, 0.0))
    cut = alert - lead
    return Split(normal_start=start, normal_end=cut, incident_start=cut, window_end=end)


def _grid_points(bundle: EvidenceBundle, step: float) -> int:
    """Sampling points in the incident's window: too few and neither onset nor baseline is robust."""
    return int((bundle.incident.window.end_s - bundle.incident.window.start_s) // step) + 1


def _detect_split(
    series: list[PreparedSeries], bundle: EvidenceBundle, step: float, normalise: bool, gaps: bool = False
) -> Split:
    """The change point of the anomaly curve near the alert; the fixed split when none is found."""
    fixed = _fixed_split(bundle)
    start, end = fixed.normal_start, fixed.window_end
    alert = _alert_time(bundle)
    n = _grid_points(bundle, step)
    if n < 2 * MIN_NORMAL_POINTS or not series:
        return fixed
    grid = start + step * np.arange(n, dtype=np.float64)
    per_series: list[tuple[FloatArray, FloatArray]] = []
    for s in series:
        normal = s.vs[s.ts < fixed.normal_end]
        if normal.size < MIN_NORMAL_POINTS:
            continue
        base: Baseline = robust_baseline(normal, s.family, normalise)
        per_series.append((s.ts, signed_z(s.vs, base, s.sign) * s.weight))
    curve = anomaly_curve(grid, step, per_series)
    back = min(ONSET_BACK_SHARE * max(alert - start, 0.0), ONSET_MAX_LEAD_SECONDS)
    lo = int((alert - back - start) // step)
    hi = math.ceil((alert + ONSET_FORWARD_SHARE * max(end - alert, 0.0) - start) / step)
    if gaps:
        resumed = after_last_gap(np.concatenate([s.ts for s in series]), step, alert)
        if resumed is not None:
            lo = max(lo, int((resumed - start) // step) + 1)
    k = change_point(curve, lo, hi, MIN_NORMAL_POINTS)
    if k is None:
        return fixed
    cut = float(grid[k])
    return Split(normal_start=start, normal_end=cut, incident_start=cut, window_end=end, detected=True)


def incident_split(bundle: EvidenceBundle, options: EngineOptions = DEFAULT_OPTIONS) -> Split:
    """Where the normal period ends and the incident starts, as the engine sees it."""
    if not options.onset_detection:
        return _fixed_split(bundle)
    step = _step(bundle)
    return _detect_split(
        _prepare(bundle, options, step)[0], bundle, step, options.kind_normalisation, options.gap_aware_onset
    )


def _metric_channel(scored: list[ScoredSeries]) -> float:
    ranked = sorted(scored, key=lambda e: -e.weighted)
    if not ranked:
        return 0.0
    top = ranked[0].weighted
    other = next((e for e in ranked[1:] if e.series.kind is not ranked[0].series.kind), None)
    return top + (SECOND_SIGNAL_WEIGHT * other.weighted if other else 0.0)


def _edges(bundle: EvidenceBundle, span_edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    callees: dict[str, set[str]] = defaultdict(set)
    for e in bundle.topology.edges:
        if e.caller != e.callee:
            callees[e.caller].add(e.callee)
    for caller, callee in span_edges:
        callees[caller].add(callee)
    return callees


def _later(callee: float | None, caller: float | None, tolerance: float) -> bool:
    """Whether a callee's anomaly demonstrably started after its caller's (by more than ``tolerance``)."""
    return callee is not None and caller is not None and callee > caller + tolerance


_RESOURCE_KINDS = {SignalKind.CPU, SignalKind.MEMORY, SignalKind.DISK, SignalKind.RESTARTS}


def _resource_led(ev: _ServiceEvidence) -> bool:
    """Whether a resource of the service's own container is about as strong as its strongest evidence."""
    top = max(ev.channels.values(), default=0.0)
    if top <= 0:
        return False
    return any(
        e.series.source == "metric"
        and e.series.kind in _RESOURCE_KINDS
        and not e.series.signal.lower().startswith(HOST_PREFIXES)
        and e.weighted >= RESOURCE_SHARE * top
        for e in ev.scored
    )


def _service_onset(ev: _ServiceEvidence) -> float | None:
    """When a service's anomaly started: the earliest onset among its strong signals.

    Strong: at least ONSET_SHARE of its top weighted score, so a weak early wobble of an unrelated
    signal does not date the anomaly; logs count by their first new template.
    """
    if not ev.scored and not ev.shifts:
        return None
    own = [e for e in ev.scored if e.series.source != "client"]
    top = max((e.weighted for e in own), default=0.0)
    onsets = [e.result.onset for e in own if e.weighted >= ONSET_SHARE * top and e.result.onset is not None]
    onsets += [s.first_seen for s in ev.shifts[:LOG_ITEMS] if s.first_seen is not None]
    return min(onsets) if onsets else None


def _propagation_adjust(
    scores: dict[str, float],
    callees: dict[str, set[str]],
    onsets: dict[str, float | None] | None = None,
    tolerance: float = 0.0,
    resource_led: set[str] | None = None,
) -> dict[str, str]:
    """Discount likely victims in place; return service -> the callee that explains it.

    With ``onsets``, a callee whose anomaly started later than its caller's (by more than a sample)
    explains nothing: it is a consequence (less or different traffic from a failing caller).
    ``tolerance`` (one sampling step) absorbs onsets that differ only by when each series was sampled.
    Services in ``resource_led`` (whose strongest evidence is their own CPU, memory, disk or restarts)
    are never discounted: a slow or failing callee makes its caller wait or fail, it does not make it
    burn CPU or fill memory.
    """
    original = dict(scores)
    explained_by: dict[str, str] = {}
    for service, own in original.items():
        if resource_led is not None and service in resource_led:
            continue
        candidates = [c for c in callees.get(service, ()) if c in original and c != service]
        if onsets is not None:
            mine = onsets.get(service)
            candidates = [c for c in candidates if not _later(onsets.get(c), mine, tolerance)]
        if not candidates or own <= 0:
            continue
        top = max(candidates, key=lambda c: original[c])
        if original[top] >= MIN_EXPLAINING_SCORE and original[top] >= PROPAGATION_RATIO * own:
            scores[service] = own * VICTIM_DISCOUNT
            explained_by[service] = top
    return explained_by


def _early_share(e: ScoredSeries) -> float | None:
    """Share of a series' move (incident peak over baseline) made within EARLY_SECONDS of its onset."""
    r = e.result
    move = r.peak - r.baseline
    if r.onset is None or move <= 0:
        return None
    first = e.series.vs[(e.series.ts >= r.onset) & (e.series.ts < r.onset + EARLY_SECONDS)]
    if not first.size:
        return None
    return float(np.clip((float(first.max()) - r.baseline) / move, 0.0, 1.0))


def _kind_evidence(ev: _ServiceEvidence, code_path_falls: bool = True) -> list[KindEvidence]:
    out: list[KindEvidence] = []
    for e in ev.scored:
        fault = KIND_TO_FAULT.get(e.series.kind)
        if fault is not None and e.series.source != "client":
            # a move that was over before the alert fired is an earlier episode's, not this fault's
            z = e.result.z_max if e.result.z_current is None else min(e.result.z_max, e.result.z_current)
            out.append(KindEvidence(fault, z, e.result.onset, _early_share(e)))
    for shift in ev.shifts:
        if shift.error:
            out.append(KindEvidence(FaultType.ERRORS_CODE, shift.z, shift.first_seen))
    for pattern in ev.patterns:
        if pattern.error and pattern.z > 0:
            out.append(KindEvidence(FaultType.ERRORS_CODE, pattern.z, pattern.first_seen))
        elif code_path_falls and pattern.code_path_stopped:
            out.append(KindEvidence(FaultType.ERRORS_CODE, -pattern.z, pattern.first_seen))
    return out


def rank_suspects(bundle: EvidenceBundle, options: EngineOptions = DEFAULT_OPTIONS) -> list[Suspect]:
    """Every service with evidence, most likely root cause first."""
    step = _step(bundle)
    series, span_edges = _prepare(bundle, options, step)
    if options.onset_detection:
        split = _detect_split(series, bundle, step, options.kind_normalisation, options.gap_aware_onset)
    else:
        split = _fixed_split(bundle)
    # a normal period with room for fewer than MIN_NORMAL points: a recording that starts just
    # before its alert; one point before is then all the baseline there can be
    short = split.normal_end - split.normal_start < MIN_NORMAL * step

    # typing reads how far each series is still out from one sample before the alert on
    current_from = (
        _alert_time(bundle) - step if options.current_moves and bundle.incident.alert_time else None
    )
    evidence: dict[str, _ServiceEvidence] = defaultdict(_ServiceEvidence)
    for s in series:
        result = score_arrays(
            s.ts,
            s.vs,
            split.normal_end,
            split.incident_start,
            s.kind,
            s.signal,
            s.family,
            options.kind_normalisation,
            sign=s.sign,
            recent_points=RECENT_POINTS if options.recent_baseline else 0,
            requests=s.requests,
            min_normal=1 if short else MIN_NORMAL,
            current_from=current_from,
        )
        if result is not None:
            evidence[s.service].scored.append(ScoredSeries(s, result))

    # events (log lines, spans, calls on an edge) are split near the alert and compared over the
    # incident's first minutes (``patterns.pattern_split``, ``patterns.pattern_end``)
    cut = pattern_split(_alert_time(bundle), split.incident_start, split.normal_start)
    end = pattern_end(cut, split.window_end) if options.event_horizon else split.window_end
    if options.patterns and (bundle.logs or bundle.spans):
        logs = bundle.logs if options.logs else []
        spans = bundle.spans if options.traces else []
        use_ref = options.reference_period
        ref_logs = bundle.reference_logs if use_ref and options.logs else []
        ref_spans = bundle.reference_spans if use_ref and options.traces else []
        for pattern in pattern_shifts(
            logs,
            spans,
            split.normal_start,
            cut,
            end,
            reference_logs=ref_logs,
            reference_spans=ref_spans,
            stopped_as_error=options.stopped_code_paths,
            error_rises_only=options.error_rises_only,
        ):
            evidence[pattern.service].patterns.append(pattern)
    elif options.logs and bundle.logs:
        for shift in template_shifts(
            bundle.logs,
            split.incident_start,
            normal_seconds=split.normal_end - split.normal_start,
            incident_seconds=split.window_end - split.incident_start,
            normal_start=split.normal_start,
        ):
            evidence[shift.service].shifts.append(shift)

    stopped: list[PatternShift] = []
    if options.stopped_calls:
        stopped += stopped_calls(bundle.metrics, (split.normal_start, cut), (cut, end))
    if options.truncated_handlers and options.traces and bundle.spans:
        stopped += truncated_handlers(bundle.spans, split.normal_start, cut, end)
    for stop in stopped:
        found = evidence[stop.service].patterns
        found.append(stop)
        found.sort(key=lambda p: -p.score)  # strongest first, as channel_value reads them

    scores: dict[str, float] = {}
    for ev in evidence.values():
        ev.channels["metric"] = _metric_channel([e for e in ev.scored if e.series.source == "metric"])
        ev.channels["trace"] = _metric_channel([e for e in ev.scored if e.series.source == "trace"])
        ev.channels["log"] = ev.shifts[0].score if ev.shifts else 0.0
        ev.channels["pattern"] = channel_value(ev.patterns)
    if options.channel_contrast:
        for name in ("metric", "trace", "log", "pattern"):
            contrast = peer_contrast({svc: ev.channels[name] for svc, ev in evidence.items()})
            for svc, value in contrast.items():
                evidence[svc].channels[name] = value
    by_service = {svc: ev.channels for svc, ev in evidence.items()}
    if options.channel_calibration:
        calibrate(by_service)
    if options.channel_concentration:
        weigh_by_concentration(by_service)
    for service, channels in by_service.items():
        scores[service] = combine(channels)

    impact: dict[str, tuple[float, Excess]] = {}
    if options.traffic_weighting:
        impact = impact_weights(
            bundle,
            split.normal_end,
            split.incident_start,
            list(scores),
            RECENT_POINTS if options.recent_baseline else 0,
        )
        for service, (weight, _) in impact.items():
            scores[service] *= weight

    explained_by: dict[str, str] = {}
    callees: dict[str, set[str]] = {}
    if options.topology:
        callees = _edges(bundle, span_edges)
        onsets = {svc: _service_onset(ev) for svc, ev in evidence.items()} if options.causal_order else None
        resource_led = (
            {svc for svc, ev in evidence.items() if _resource_led(ev)} if options.resource_causes else None
        )
        explained_by = _propagation_adjust(scores, callees, onsets, tolerance=step, resource_led=resource_led)
    callers: dict[str, set[str]] = defaultdict(set)
    for caller, cs in callees.items():
        for c in cs:
            callers[c].add(caller)

    suspects: list[Suspect] = []
    for service, ev in evidence.items():
        ranked = sorted(ev.scored, key=lambda e: -e.weighted)
        items = [series_item(e) for e in ranked if e.series.source == "metric" and e.result.z_max >= ONSET_Z][
            :METRIC_ITEMS
        ]
        items += [series_item(e) for e in ranked if e.series.source == "trace" and e.result.z_max >= ONSET_Z][
            :TRACE_ITEMS
        ]
        items += [log_item(s, i) for i, s in enumerate(ev.shifts[:LOG_ITEMS])]
        items += [pattern_item(p) for p in ev.patterns[:PATTERN_ITEMS]]
        if service in explained_by:
            items.append(victim_item(service, explained_by[service]))
        elif callers.get(service) or callees.get(service):
            healthy = sorted(c for c in callees.get(service, ()) if c not in explained_by)
            items.append(placement_item(service, sorted(callers.get(service, ())), healthy))
        if service in impact:
            items.append(impact_item(service, *impact[service]))
        fault = classify(
            _kind_evidence(ev, options.code_path_falls),
            ordering=options.fault_ordering,
            shape=options.fault_shape,
        )
        suspects.append(
            Suspect(service=service, score=round(scores[service], 4), fault_type=fault, evidence=items)
        )
    suspects.sort(key=lambda s: (-s.score, s.service))
    return suspects

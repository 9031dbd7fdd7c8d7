"""Stage 2, split: the one place that decides what is the normal period and what is the incident.

An alert fires a while after its fault started: a rule's ``for:`` duration plus an evaluation interval,
one to five minutes. So the alert does not date the fault; it bounds where the fault can have
started. The onset is the change point of the services' own signals inside that range:

* metrics (``metric onset``): each series is scored point by point against the period before the
  range, the per-point anomalies are summed over series into one curve (``onset.anomaly_curve``),
  and its mean-shift change point is the onset; the normal period ends there (when that is the
  range's first point, the shift began before the range: the onset goes back to where it began);
* the window ends a step after the metrics' last sample (``_data_end``: a live window reaches past
  the moment it is investigated), and a change point inside a ramp (a rate over a window turns a
  step into one) goes back to where the ramp began (``_ramp_start``);
* states that changed for good inside the range (a call edge gone silent while its caller was
  called, ``calls.silence_onset``; a target gone down, ``_down_onset``) move that onset back to
  where they changed, never later: a state is read as it is, while the curve sums rates over
  windows that take the window to move;
* events (log lines, spans, call edges; ``event onset``): they are timestamped to the millisecond, so
  their split is dated from the events themselves, inside the same range, which for them starts no
  earlier than an earlier episode of the same trouble resolved (``event_onset``, ``_events_back``); without
  a dating event, a fixed lead before the alert, no later than a metric onset the data placed or an
  error rise too weak to date the events on its own, and never after the last recorded events'
  stretch or inside a silence of the events.

Every consumer reads the split from here: the engine's stages, the log summary of reports and
prompts (``log_summary``) and the LLM's tools (``normal_end``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsagent.analysis.calls import silence_onset
from opsagent.analysis.event_onset import event_onset
from opsagent.analysis.onset import after_last_gap, anomaly_curve, change_point
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.prepare import Prepared, prepare
from opsagent.analysis.scoring import Baseline, robust_baseline, signed_z
from opsagent.domain import EvidenceBundle, LogRecord, MetricSeries, SignalKind, Span

FloatArray = npt.NDArray[np.float64]

# Without onset detection the incident starts this long before the alert, so a fault that began
# before the alert fired is not counted as normal; capped at a quarter of the history so some
# normal period is left.
FIXED_LEAD_SECONDS = 15 * 60
MAX_LEAD_SHARE = 0.25
# How long before its alert a fault can have started: the longest usual ``for:`` duration (5 min)
# of an alerting rule; searching further finds older, unrelated shifts (a previous incident, a seam
# in the recording); at most half the history before the alert, so a preliminary normal period is
# left. Forward: an alert fires on symptoms already recorded, so the onset is at most a couple of
# samples after it (an alert time that is only the nominal start of a fault whose effect shows in
# the next samples), and never more than half the time left after it.
ONSET_MAX_LEAD_SECONDS = 5 * 60
ONSET_BACK_SHARE = 0.5
ONSET_FORWARD_SHARE = 0.5
ONSET_FORWARD_STEPS = 2
ONSET_FORWARD_SECONDS = 60.0
# The normal period keeps at least this many points.
MIN_NORMAL_POINTS = 3
# A ramp's start (``_ramp_start``): the curve above what the points before the search range show in
# all but one in twenty, so a few noisy normal points (or an earlier fault's) do not set the bar.
USUAL_QUANTILE = 0.95
# An alert fires after its fault's first symptoms; events are timestamped to the millisecond, so
# their split need not wait for the metric onset. Without event dating, the events' normal period
# ends this long before the alert.
EVENT_LEAD_SECONDS = 30.0
# A stretch of recorded events ends where none was recorded for this long: a service handling
# requests is never silent for as long as the events' lead itself; a recording that keeps logs and
# spans only around its faults, or a collector outage, is.
EVENT_GAP_SECONDS = EVENT_LEAD_SECONDS
# The events' onset is searched up to this long after the alert (a recorded alert time that is the
# nominal start of a fault whose first events come a little later): as long as the metrics' onset.
# How long a fault takes to show after its nominal start is the system's, not the signal's: an
# exception thrown on a code path that the next requests reach writes its first line as late as
# those requests' metrics move.
EVENT_FORWARD_SECONDS = ONSET_FORWARD_SECONDS
# The events' normal period ends this long before the first error that dates it, so that error
# counts in the incident.
EVENT_MARGIN_SECONDS = 1.0
# Events are compared over the incident's first minutes only: a fault's own events come first,
# its aftermath (retries, recoveries, the next change) later. Five minutes, the usual length of an
# incident's abnormal period in RCA benchmarks and of an alert's look-back.
EVENT_HORIZON_SECONDS = 300.0


@dataclass(frozen=True)
class Split:
    """Normal period [normal_start, normal_end), incident [incident_start, window_end]; events are
    compared as [normal_start, event_split) against [event_split, event_end]."""

    normal_start: float
    normal_end: float
    incident_start: float
    window_end: float
    event_split: float
    event_end: float
    detected: bool = False


def _bounds(prepared: Prepared, bundle: EvidenceBundle) -> tuple[float, float, float]:
    """The window's start, its end as far as the metrics reach (``_data_end``), and the alert."""
    window = bundle.incident.window
    return window.start_s, _data_end(prepared, window.end_s), prepared.alert


def _data_end(prepared: Prepared, end: float) -> float:
    """The window's end, or a step after the metrics' last sample when they stop before it.

    A live incident's window reaches past the moment it is investigated (the alert plus the
    look-ahead in which later re-investigations see more): the minutes after the last sample hold
    no data, not a return to normal. Counted as the incident's, they pull the anomaly curve's
    incident side to zero, and a fault that shows only a minute before the alert has no change
    point left (the live lab's CPU hog on catalog, seed 67: no onset, the fixed lead reached back
    over two earlier faults, and one of them ranked first).
    """
    last = prepared.last_sample
    return end if last is None else min(end, last + prepared.step)


def _events(
    normal_start: float, cut: float, window_end: float, options: EngineOptions
) -> tuple[float, float]:
    cut = max(cut, normal_start)
    end = min(window_end, cut + EVENT_HORIZON_SECONDS) if options.split.event_horizon else window_end
    return cut, end


def _event_cut(
    prepared: Prepared, bundle: EvidenceBundle, options: EngineOptions, onset: float | None = None
) -> float:
    """Where the events' normal period ends: dated from the error events inside the range the
    alert bounds, else a fixed lead before the alert, no later than a metric onset the data placed
    (``onset``) or a weak error rise (``EventOnset.sharp`` False), moved to the recorded events
    around it (``_before_silence``)."""
    start, _, alert = _bounds(prepared, bundle)
    fixed = alert - EVENT_LEAD_SECONDS

    if not options.split.event_onset:
        return fixed
    back = _events_back(bundle, start, alert)
    logs = bundle.logs if options.prepare.logs else []
    spans = bundle.spans if options.prepare.traces else []
    found = event_onset(
        logs, spans, start, alert - back, alert + EVENT_FORWARD_SECONDS, options.split.weak_stopped_statement
    )
    if found is not None and found.sharp:
        return found.time - EVENT_MARGIN_SECONDS
    if onset is not None:
        # the metrics dated the incident: its minutes are not the events' normal period
        fixed = min(fixed, onset)
    if found is not None and options.split.weak_event_onset and found.time - EVENT_MARGIN_SECONDS < fixed:
        # errors too few to date the events on their own began before the fixed lead: their lines are
        # the incident's (a late alert's fixed lead would count them as normal); a weak rise only
        # ever moves the split back, so a chance one cannot count a fault's first minutes as normal
        return found.time - EVENT_MARGIN_SECONDS
    if not options.split.event_gaps:
        return fixed
    # from the split itself when a walked-back metric onset put it before the range: the events
    # between it and the range are not a silence
    return _before_silence(logs, spans, fixed, min(max(alert - back, start), fixed), alert)


def _search_back(start: float, alert: float) -> float:
    """How far before the alert an onset is searched: the usual ``for:``, at most half the history."""
    return min(ONSET_BACK_SHARE * max(alert - start, 0.0), ONSET_MAX_LEAD_SECONDS)


def _events_back(bundle: EvidenceBundle, start: float, alert: float) -> float:
    """How far before the alert the events' onset is searched: as far as the metrics' (the usual
    ``for:``, at most half the history), but not before an earlier episode of the same trouble
    resolved (``Incident.quiet_since``, inside the window when the quiet was too short to start the
    window after it, ``evidence.coverage.after_quiet``).

    Error lines are timestamped to the millisecond and stop with their fault: a rise before that
    episode resolved is that episode's. Dated from it, the earlier episode's errors join this one's
    and name the earlier fault's callers (a frontend's "call to X failed" for both faults) as the
    cause. The metrics keep their range: their rate windows still show the earlier episode after it
    resolved, and their change point is where the new shift begins.
    """
    back = _search_back(start, alert)
    quiet = bundle.incident.quiet_since
    if quiet is not None and start < quiet.timestamp() < alert:
        back = min(back, alert - quiet.timestamp())
    return back


def _before_silence(logs: list[LogRecord], spans: list[Span], fixed: float, lo: float, alert: float) -> float:
    """The fixed split, unless the recorded events stopped before it: then the start of their last
    stretch in [lo, fixed]; or unless it falls in a silence of the events: then their first one
    after it (the same comparison, and the events' horizon counts from where they resume).

    A split after the last recorded event compares nothing: the incident side is empty and the
    fault's own events are counted as normal. That happens when the recording of logs and spans ends
    (or pauses) between the fault and a late alert; the fault began at most the search range before
    the alert, so the last stretch of events recorded in that range is where its events are.
    """
    times = np.sort(
        np.fromiter(
            (*(r.timestamp for r in logs), *(s.start for s in spans)),
            dtype=np.float64,
            count=len(logs) + len(spans),
        )
    )
    seen = times[(times >= lo) & (times <= alert)]
    if seen.size and seen[-1] >= fixed:
        after = seen[seen >= fixed]
        if after[0] - fixed >= EVENT_GAP_SECONDS:
            return float(after[0]) - EVENT_MARGIN_SECONDS
        return fixed
    if seen.size == 0:
        return fixed
    breaks = np.nonzero(np.diff(seen) >= EVENT_GAP_SECONDS)[0]
    return float(seen[breaks[-1] + 1] if breaks.size else seen[0]) - EVENT_MARGIN_SECONDS


def fixed_split(
    prepared: Prepared, bundle: EvidenceBundle, options: EngineOptions = DEFAULT_OPTIONS
) -> Split:
    start, end, alert = _bounds(prepared, bundle)
    lead = min(FIXED_LEAD_SECONDS, MAX_LEAD_SHARE * max(alert - start, 0.0))
    cut = alert - lead
    return Split(start, cut, cut, end, *_events(start, _event_cut(prepared, bundle, options), end, options))


def _grid_points(start: float, end: float, step: float) -> int:
    """Sampling points in the incident's window: too few and neither onset nor baseline is robust."""
    return int((end - start) // step) + 1


def metric_onset(prepared: Prepared, bundle: EvidenceBundle, options: EngineOptions) -> float | None:
    """The change point of the services' anomaly curve inside the range the alert bounds."""
    found = _metric_change(prepared, bundle, options)
    return None if found is None else found[0]


def _metric_change(
    prepared: Prepared, bundle: EvidenceBundle, options: EngineOptions
) -> tuple[float, bool] | None:
    """The metric onset, and whether the data placed it: False when it is the search range's first
    point (the best split there is where the range begins, not a change the curve shows)."""
    series, step = prepared.series, prepared.step
    start, end, alert = _bounds(prepared, bundle)
    n = _grid_points(start, end, step)
    if n < 2 * MIN_NORMAL_POINTS or not series:
        return None
    # the onset lies in [alert - back, alert + forward]; the points before that range are the
    # preliminary normal period every series is scored against
    back = _search_back(start, alert)
    prelim = alert - back
    grid = start + step * np.arange(n, dtype=np.float64)
    per_series: list[tuple[FloatArray, FloatArray]] = []
    for s in series:
        normal = s.vs[s.ts < prelim]
        if normal.size < MIN_NORMAL_POINTS:
            continue
        base: Baseline = robust_baseline(normal, s.family, options.prepare.kind_normalisation)
        per_series.append((s.ts, signed_z(s.vs, base, s.sign) * s.weight))
    curve = anomaly_curve(grid, step, per_series)
    lo = int((alert - back - start) // step)
    forward = min(
        ONSET_FORWARD_SHARE * max(end - alert, 0.0), max(ONSET_FORWARD_STEPS * step, ONSET_FORWARD_SECONDS)
    )
    hi = math.ceil((alert + forward - start) / step)
    floor = MIN_NORMAL_POINTS
    if options.split.gap_aware_onset:
        resumed = after_last_gap(np.concatenate([s.ts for s in series]), step, alert)
        if resumed is not None:
            lo = max(lo, int((resumed - start) // step) + 1)
            floor = max(floor, int((resumed - start) // step) + 1)
    k = change_point(curve, lo, hi, MIN_NORMAL_POINTS)
    if k is None:
        return None
    bound = max(lo, MIN_NORMAL_POINTS)
    if options.split.rise_start and k > bound:
        # a change the curve shows inside the range, dated where its ramp began
        return float(grid[_ramp_start(curve, k, max(floor, bound))]), True
    if options.split.rise_start:
        k = _rise_start(curve, k, floor)
    return float(grid[k]), k != bound


def _ramp_start(curve: FloatArray, k: int, floor: int) -> int:
    """Where the curve's rise began, walking back from the change point ``k`` (not before
    ``floor``) while the curve stays above what the points before ``floor`` show in all but one in
    twenty (``USUAL_QUANTILE``).

    A rate over a window (``rate(x[1m])``) turns a step into a ramp as long as the window. The
    mean-shift change point of a ramp falls in its middle when the incident side is short (an
    investigation a few seconds after the alert); the ramp's first points would be counted as
    normal, and as the most recent normal points they are the level the incident is compared with
    (the live lab's CPU hog on payment, seed 67: its change point 20 s into the ramp, rank 4).
    """
    usual = float(np.quantile(curve[:floor], USUAL_QUANTILE)) if floor > 0 else 0.0
    while k - 1 >= floor and curve[k - 1] > usual:
        k -= 1
    return k


def _rise_start(curve: FloatArray, k: int, floor: int) -> int:
    """Where the curve's shift began when the change point is the search range's first point: the
    earliest point before it from which the curve stays above the midpoint of the two sides' means.

    An alert that fired later than the usual ``for:`` (a slow burn, a fault that built up before it
    hurt) bounds the search after the shift began: the range's start is then not the onset, and
    the shift's first points would be counted as normal (and, as the most recent normal points, be
    the level the incident is compared with).
    """
    mid = (float(curve[:k].mean()) + float(curve[k:].mean())) / 2.0 if k > 0 else float("inf")
    while k - 1 >= floor and curve[k - 1] >= mid and curve[k - 1] > 0.0:
        k -= 1
    return k


def split_incident(
    prepared: Prepared, bundle: EvidenceBundle, options: EngineOptions = DEFAULT_OPTIONS
) -> Split:
    """Where the normal period ends and the incident starts, for metrics and for events."""
    if not options.split.onset_detection:
        return fixed_split(prepared, bundle, options)
    found = _metric_change(prepared, bundle, options)
    start, end, alert = _bounds(prepared, bundle)
    search = (alert - _search_back(start, alert), alert)
    # a state that changed for good dates the incident where the metrics place it later or nowhere
    changed = _state_onset(bundle.metrics, start, search, end, options)
    if changed is not None and (found is None or changed < found[0]):
        found = (changed, True)
    if found is None:
        return fixed_split(prepared, bundle, options)
    onset, dated = found
    cut = _event_cut(
        prepared, bundle, options, onset if dated and options.split.events_follow_metrics else None
    )
    return Split(start, onset, onset, end, *_events(start, cut, end, options), detected=True)


def _state_onset(
    metrics: list[MetricSeries], start: float, search: tuple[float, float], end: float, options: EngineOptions
) -> float | None:
    """The earliest time in ``search`` at which a state changed for good: a call edge went silent
    (``calls.silence_onset``) or a target went down (``_down_onset``), each where its switch is on."""
    onsets: list[float | None] = []
    if options.split.silence_onset:
        onsets.append(silence_onset(metrics, start, search, end))
    if options.split.down_onset:
        onsets.append(_down_onset(metrics, search, end))
    return min((t for t in onsets if t is not None), default=None)


def _down_onset(metrics: list[MetricSeries], search: tuple[float, float], end: float) -> float | None:
    """The earliest first down sample, inside ``search``, of a target health series (``up``) that
    was up before it and stayed down to ``end``.

    Target health is a state, sampled as it is: its first 0 is when the target went down. The
    anomaly curve's change point sums every series, and a down store's callers' error rates take
    their rate windows to rise, so it can fall a sample or two later; the target's own first down
    samples are then its normal period, its recent level reads as down already, and the one
    series that names the cause scores nothing (the live lab's Redis stopped, seed 59).
    """
    earliest: float | None = None
    for m in metrics:
        if m.kind is not SignalKind.UP:
            continue
        points = sorted(
            (t, v) for t, v in zip(m.timestamps, m.values, strict=True) if t <= end and math.isfinite(v)
        )
        first: float | None = None  # the first sample of the down stretch that lasts to the end
        was_up = up_before = False
        for t, v in points:
            if v > 0:
                was_up, first = True, None
            elif first is None:
                first, up_before = t, was_up
        if first is not None and up_before and search[0] <= first <= search[1]:
            earliest = first if earliest is None else min(earliest, first)
    return earliest


def incident_split(bundle: EvidenceBundle, options: EngineOptions = DEFAULT_OPTIONS) -> Split:
    """The engine's split of a bundle, computed from its own data."""
    return split_incident(prepare(bundle, options), bundle, options)


def normal_end(bundle: EvidenceBundle) -> float:
    """Where "before the incident" ends for a reader of the metrics (reports, the LLM's tools)."""
    return incident_split(bundle).normal_end


def event_split(bundle: EvidenceBundle) -> float:
    """Where "before the incident" ends for a reader of the logs (the log summary)."""
    return incident_split(bundle).event_split

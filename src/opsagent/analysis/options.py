"""Switches of the statistical engine, grouped by the stage that reads them.

Every technique can be turned off on its own, so its contribution can be measured (``scripts/ablation.py``):
the defaults are what the engine runs with. ``EngineOptions.with_(name=False)`` turns one off by its
name, whichever stage it belongs to. What each measured on the development split is in docs/ENGINE.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class PrepareOptions:
    # Floor each series' robust scale by its unit (percent points, seconds, bytes, cores...) and
    # its own level, and weigh signal kinds by how often they move in a cause rather than a victim.
    # Off: the plain IQR scale with a tiny epsilon, every kind weighted 1 (BARO-like).
    kind_normalisation: bool = True
    # Read the logs at all (event patterns of log statements).
    logs: bool = True
    # Read the spans at all: per-service self time and error share series, span events, handlers.
    traces: bool = True


@dataclass(frozen=True)
class SplitOptions:
    # Find the incident's onset as the change point of the services' own anomaly curve, inside the
    # range the alert bounds (``split.py``), instead of trusting the alert time minus a fixed lead.
    onset_detection: bool = True
    # Never split at the first point after a gap in the recording: a level that differs across a gap
    # cannot be dated, so the normal period reaches into the incident's own stretch.
    gap_aware_onset: bool = True
    # A change point at the search range's first point: the shift began before the range (a late
    # alert); the onset goes back to where the anomaly curve's rise began (``split._rise_start``).
    # One inside the range: it goes back to where its ramp began (a rate over a window turns a step
    # into a ramp, ``split._ramp_start``).
    rise_start: bool = True
    # Date the events' split (logs, spans, call edges) from the events themselves, inside the range
    # the alert bounds (``split.event_onset``); off: a fixed lead before the alert.
    event_onset: bool = True
    # No error rose sharply enough to date the events (``event_onset.MIN_ONSET_Z``): the earliest
    # error rise the event comparison itself counts as a shift (``events.MIN_Z``) still moves the
    # events' split back before the fixed lead, never later than it (``split._event_cut``).
    weak_event_onset: bool = True
    # A log statement that stopped for good while its service kept logging, by the event
    # comparison's own bar but under the onset bar, is a weak onset too (the earlier of it and a
    # weak error rise): a fault that writes no error line dates its events by what it stopped writing.
    weak_stopped_statement: bool = True
    # Without a dating event, a fixed split after the last recorded event (the logs and spans end or
    # pause before a late alert) moves back to the start of their last stretch (``split._before_silence``).
    event_gaps: bool = True
    # Without a dating event, the events' normal period ends no later than a metric onset that the
    # data placed (not the search range's first point): the metrics dated the incident.
    events_follow_metrics: bool = True
    # Events are compared over the incident's first minutes (``split.EVENT_HORIZON_SECONDS``), not
    # every event up to the window's end: a fault's own events come first, its aftermath later.
    event_horizon: bool = True
    # A caller's call edge that went silent for good inside the search range while it kept being
    # called moves the onset back to its first silent sample (``calls.silence_onset``), never later:
    # a stopped code path moves no metric of the caller's own.
    silence_onset: bool = True
    # A target that went down inside the search range and stayed down moves the onset back to its
    # first down sample (``split._down_onset``), never later: target health is a state sampled as
    # it is, while its callers' error rates take their windows to rise and place the curve's change
    # point after it.
    down_onset: bool = True


@dataclass(frozen=True)
class ScoreOptions:
    # A point must stray from the last few normal points as well as from the whole normal period,
    # so a level that drifted before the onset is not scored as the incident.
    recent_baseline: bool = True
    # Fault typing reads each series only as far as it is still out from one sample before the
    # alert on: a move that rose and fell back before the alert fired is an earlier episode.
    current_moves: bool = True


@dataclass(frozen=True)
class ChannelOptions:
    # Per-service events from logs and spans whose share of the traffic changed (``patterns.py``).
    patterns: bool = True
    # Where the incident names a reference period known to be normal, its events join the normal
    # side, and error statements are also compared with it alone.
    reference_period: bool = True
    # A log statement that fell at least 2x below the traffic it rides on weighs as an error event:
    # its code path stopped while requests kept coming (``events.stopped_code_path``).
    stopped_code_paths: bool = True
    # Such a stopped statement weighs as an error rise of the same z, without the discount of a fall
    # (``patterns._shifts``): its requests kept coming, so it is not lost traffic.
    stopped_full_weight: bool = True
    # Only errors that rise and events that fall are evidence; a non-error event that rises is
    # what a change in the request mix looks like (``patterns._fault_evidence``).
    error_rises_only: bool = True
    # An error event that rises in two or more services at once weighs as an echo: what they share
    # failed (a dependency they could not reach), not each of them (``patterns._shared_as_echoes``).
    shared_errors: bool = True
    # The error-origin walk blames a callee for an error line only where the operation the trace
    # called changed (its spans, or a statement written in it), not any service with a change
    # somewhere: a wrong return value comes from the operation that was called (``event_counts.Changed``).
    origin_by_operation: bool = True
    # Per-edge call metrics: a call edge that went silent while its caller kept being called is a
    # stopped code path of the caller (``calls.stopped_calls``).
    stopped_calls: bool = True
    # Traces: a handler that stopped taking a step it took on every request, at a change point in
    # its own spans (``handlers.truncated_handlers``), is a stopped code path of its service.
    truncated_handlers: bool = True


@dataclass(frozen=True)
class WeighOptions:
    # Put each evidence channel on the metric channel's scale by how exceptional a service is in
    # it among the incident's services (``weigh.calibrate``).
    channel_calibration: bool = True
    # In calibration, a service that stands out in a channel while a service it calls stands out too
    # is not counted among the channel's outliers: it is that callee's fault seen at a caller, one
    # piece of evidence, which must not dilute the channel as independent outliers would.
    independent_outliers: bool = True
    # Scale each channel by how concentrated it is on one service (``weigh.weigh_by_concentration``).
    channel_concentration: bool = True
    # Where request counts are recorded: error shares as counts of failed requests, and each suspect
    # weighed by how much of the alerted symptom its own excess could account for (``traffic.py``).
    traffic_weighting: bool = True


@dataclass(frozen=True)
class PropagateOptions:
    # Discount services whose anomaly an anomalous callee explains (``propagate.py``).
    topology: bool = True
    # A service whose strongest evidence is its own CPU, memory, disk or restarts is not a victim.
    resource_causes: bool = True
    # A callee that the trace shows answering a service's leading failure normally (the failing
    # requests called it; it neither failed nor changed there) does not explain that service.
    traced_origins: bool = True
    # A callee that the service stopped calling (its call edge went silent while the service kept
    # being called) does not explain the service: the callee lost that traffic by the service's doing.
    silenced_callees: bool = True
    # A node that calls nothing, seen by the callers of a service whose fault it moves with and whose
    # excess covers its own (a balancer, a proxy in front of it), is placed below that service.
    caller_views: bool = True


@dataclass(frozen=True)
class ExplainOptions:
    # Fault type from the specific cause signals that moved first; latency is the residual class.
    fault_ordering: bool = True
    # When CPU and memory moved in the same sample, the one that made most of its move at once is
    # the fault's resource (``faults.py``).
    fault_shape: bool = True
    # CPU and memory that both shifted level within the same minute moved at once: neither is the
    # cause for having been sampled seconds earlier (a memory stressor burns CPU before it has
    # allocated); the magnitude rule decides (``faults.classify``).
    resource_tie: bool = True
    # A stopped code path (statement, operation, call edge, handler step) is errors-code evidence.
    code_path_falls: bool = True
    # A container's CPU at its limit (a utilisation of the limit at 90% or more when the alert
    # fires, below it in the normal period) is CPU saturation, whatever its score (``saturation.py``).
    cpu_saturation: bool = True


@dataclass(frozen=True)
class EngineOptions:
    prepare: PrepareOptions = PrepareOptions()
    split: SplitOptions = SplitOptions()
    score: ScoreOptions = ScoreOptions()
    channels: ChannelOptions = ChannelOptions()
    weigh: WeighOptions = WeighOptions()
    propagate: PropagateOptions = PropagateOptions()
    explain: ExplainOptions = ExplainOptions()

    def with_(self, **switches: bool) -> EngineOptions:
        """These options with the named switches set, wherever their stage is."""
        changed: dict[str, Any] = {}
        left = dict(switches)
        for stage in fields(self):
            group = changed.get(stage.name, getattr(self, stage.name))
            mine = {k: v for k, v in left.items() if k in {f.name for f in fields(group)}}
            if mine:
                changed[stage.name] = replace(group, **mine)
                for k in mine:
                    del left[k]
        if left:
            raise ValueError(f"no engine switch named {', '.join(sorted(left))}")
        return replace(self, **changed)

    def switches(self) -> dict[str, bool]:
        """Every switch by name (names are unique across stages)."""
        return {
            f.name: getattr(getattr(self, s.name), f.name)
            for s in fields(self)
            for f in fields(getattr(self, s.name))
        }


DEFAULT_OPTIONS = EngineOptions()

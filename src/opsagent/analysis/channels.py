"""Stage 4, channels: each service's evidence as one value per channel.

* ``metric``: its strongest own metric series, plus a share of its strongest of another kind;
* ``trace``: the same over the series condensed from its spans (self time, error share);
* ``pattern``: its strongest changed event: log and span events whose share of the traffic changed
  within the incident's first minutes (``patterns.py``), against the normal period plus the
  incident's reference period where it has one; call edges that went silent while their caller kept
  being called (``calls.py``); handlers whose traces stopped taking steps they took on every
  request (``handlers.py``).

Values are on the log1p(sd) scale the scorers share; ``weigh.py`` puts them on one footing.
"""

from __future__ import annotations

from opsagent.analysis.calls import stopped_calls
from opsagent.analysis.events import PatternShift
from opsagent.analysis.handlers import truncated_handlers
from opsagent.analysis.options import EngineOptions
from opsagent.analysis.patterns import pattern_shifts
from opsagent.analysis.series import ScoredSeries, ServiceEvidence
from opsagent.analysis.split import Split
from opsagent.domain import EvidenceBundle

# Within the metric channel, a second signal of another kind adds this share of its score.
SECOND_SIGNAL_WEIGHT = 0.1


def series_channel(scored: list[ScoredSeries]) -> float:
    """A channel of series: the strongest, plus a share of the strongest of another kind."""
    ranked = sorted(scored, key=lambda e: -e.weighted)
    if not ranked:
        return 0.0
    top = ranked[0].weighted
    other = next((e for e in ranked[1:] if e.series.kind is not ranked[0].series.kind), None)
    return top + (SECOND_SIGNAL_WEIGHT * other.weighted if other else 0.0)


def event_shifts(bundle: EvidenceBundle, split: Split, options: EngineOptions) -> list[PatternShift]:
    """Every changed event of the incident: log and span patterns, silent call edges, cut-short handlers."""
    opts = options.channels
    use_logs, use_spans = options.prepare.logs, options.prepare.traces
    found: list[PatternShift] = []
    if opts.patterns and (bundle.logs or bundle.spans):
        found += pattern_shifts(
            bundle.logs if use_logs else [],
            bundle.spans if use_spans else [],
            split.normal_start,
            split.event_split,
            split.event_end,
            reference_logs=bundle.reference_logs if opts.reference_period and use_logs else [],
            reference_spans=bundle.reference_spans if opts.reference_period and use_spans else [],
            stopped_as_error=opts.stopped_code_paths,
            stopped_full_weight=opts.stopped_full_weight,
            error_rises_only=opts.error_rises_only,
            shared_errors=opts.shared_errors,
            origin_by_operation=opts.origin_by_operation,
        )
    if opts.stopped_calls:
        found += stopped_calls(
            bundle.metrics, (split.normal_start, split.event_split), (split.event_split, split.event_end)
        )
    if opts.truncated_handlers and use_spans and bundle.spans:
        found += truncated_handlers(bundle.spans, split.normal_start, split.event_split, split.event_end)
    return found


def gather(
    bundle: EvidenceBundle, split: Split, evidence: dict[str, ServiceEvidence], options: EngineOptions
) -> None:
    """Add each service's changed events to ``evidence`` and set its channel values."""
    for shift in event_shifts(bundle, split, options):
        evidence[shift.service].patterns.append(shift)
    for ev in evidence.values():
        # strongest first, as the channel value and the report read them (stable: the patterns'
        # own order first, then stopped edges and handlers)
        ev.patterns.sort(key=lambda p: -p.score)
        ev.channels["metric"] = series_channel([e for e in ev.scored if e.series.source == "metric"])
        ev.channels["trace"] = series_channel([e for e in ev.scored if e.series.source == "trace"])
        ev.channels["pattern"] = ev.patterns[0].score if ev.patterns else 0.0

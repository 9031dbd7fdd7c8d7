"""What the collected evidence lacks, named: the pipeline's last step before analysis.

An empty answer with no reason is the worst answer an investigation can give: the person reading it
cannot tell "nothing is wrong" from "nothing could be seen". After every source has run, this step
adds the call graph the call-edge series describe, fits the incident's window to the metrics history
that exists, and names each missing piece of evidence as a gap that says what to configure:

- no call graph (no topology configured, no call-edge series, no traces to derive one from);
- no traces;
- less metrics history before the alert than the normal period wants, or less than its minimum;
- a normal period started after an earlier episode resolved (``after_quiet``, before collection).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsagent.config import NormalPeriodSettings, TopologySettings
from opsagent.domain import EvidenceBundle, EvidenceGap, Incident, TimeWindow
from opsagent.evidence.prometheus import history_start
from opsagent.evidence.topology import from_peer_series, merge

TOPOLOGY_HELP = (
    "set OPSAGENT_TOPOLOGY__FILE (a topology.yaml) or OPSAGENT_TOPOLOGY__CALLS, or have Prometheus "
    "report calls per edge (a catalogue signal whose series carry the peer label, e.g. "
    "call_rate_per_second); without it a victim of a slow or failing callee can rank as the cause"
)
TRACES_HELP = (
    "no trace source is configured for live incidents (a recorded incident can carry traces/*.jsonl); "
    "handlers cut short and per-call errors cannot be seen, the ranking rests on metrics and logs"
)

# The share of the time before the alert the metrics history must be missing for the window to be
# fitted to it.
MISSING_SHARE = 0.1


def _format_span(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def add_peer_topology(bundle: EvidenceBundle, settings: TopologySettings) -> None:
    """Merge the call graph that call-edge series (series with the peer label) describe."""
    if settings.from_peer_series:
        derived = from_peer_series(bundle.metrics)
        if derived.edges:
            bundle.topology = merge(bundle.topology, derived)


def call_graph_gaps(bundle: EvidenceBundle) -> list[EvidenceGap]:
    if bundle.topology.edges or any(s.parent_id for s in bundle.spans):
        return []
    return [EvidenceGap(source="topology", reason=f"no call graph: {TOPOLOGY_HELP}")]


def trace_gaps(bundle: EvidenceBundle) -> list[EvidenceGap]:
    return [] if bundle.spans else [EvidenceGap(source="traces", reason=f"no traces: {TRACES_HELP}")]


def fit_history(bundle: EvidenceBundle, settings: NormalPeriodSettings) -> list[EvidenceGap]:
    """Fit the window's start to the metrics history that exists; name a normal period that falls short.

    A window reaching back before the first sample makes whatever divides normal from incident
    proportionally to the window (or from its start) put the normal period where there is no data.
    Starting the window at the first sample lets that division use the history there is; the gap
    says how much that is, against ``wanted_minutes`` and, below it, ``minimum_seconds``.
    """
    incident = bundle.incident
    own = [m for m in bundle.metrics if not m.is_call_edge]
    first = history_start(own)
    if first is None or incident.alert_time is None:
        return []
    if incident.quiet_since is not None and incident.window.start > incident.quiet_since:
        # The window was started after an earlier episode (``after_quiet``): its gap says how long the
        # normal period is and why; the history before it exists.
        return []
    alert = incident.alert_time.timestamp()
    history = alert - first
    wanted = settings.wanted_minutes * 60.0
    # Only a history shorter than the normal period wanted, and missing a good part of the window, is
    # fitted to: a recording whose first sample comes a little after its window's start is analysed
    # exactly as recorded.
    missing = first - incident.window.start_s
    if history < wanted and missing > MISSING_SHARE * max(alert - incident.window.start_s, 0.0):
        start = datetime.fromtimestamp(first, UTC)
        if start < incident.window.end:
            window = TimeWindow(start=start, end=incident.window.end)
            bundle.incident = incident.model_copy(update={"window": window})
    since = datetime.fromtimestamp(first, UTC).strftime("%H:%M:%S UTC")
    if history < settings.minimum_seconds:
        return [
            EvidenceGap(
                source="normal period",
                reason=f"too little history to compare with: the metrics begin at {since}, "
                f"{_format_span(max(history, 0.0))} before the alert, and at least "
                f"{_format_span(settings.minimum_seconds)} are needed (OPSAGENT_NORMAL_PERIOD__MINIMUM_SECONDS); "
                "what the metrics show cannot be told apart from their normal level. Investigate again "
                "once more history exists, or give a reference period",
            )
        ]
    if history < wanted:
        return [
            EvidenceGap(
                source="normal period",
                reason=f"shorter than wanted: {_format_span(history)} of metrics history before the "
                f"alert (they begin at {since}), {_format_span(wanted)} wanted "
                "(OPSAGENT_NORMAL_PERIOD__WANTED_MINUTES); the normal period was fitted to it, so "
                "slow drifts and periodic load are less certain to be told from the fault",
            )
        ]
    return []


def _ceil_second(at: datetime) -> datetime:
    whole = at.replace(microsecond=0)
    return whole if whole == at else whole + timedelta(seconds=1)


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def after_quiet(incident: Incident, settings: NormalPeriodSettings) -> tuple[Incident, EvidenceGap | None]:
    """Start the window after the last earlier episode (or related incident) resolved, plus
    ``settle_seconds`` for the rate windows that still show it, when that leaves at least
    ``minimum_seconds`` before the alert; the returned gap names the clamp, or why there was none.

    Taken as normal, the earlier trouble hides this fault's shift; taken as part of the incident, it
    is named as this fault's cause. It runs before the evidence is collected, so the metrics are
    asked for the clamped window only (at the finer step its shorter span allows), as a recording
    of that window would be.
    """
    quiet, alert = incident.quiet_since, incident.alert_time
    if quiet is None or alert is None:
        return incident, None
    # Rounded up to the second, the precision the gap prints: a recording made from the gap's time
    # (``opsagent record --before``) then starts exactly where this window does.
    start = _ceil_second(quiet + timedelta(seconds=settings.settle_seconds))
    if start <= incident.window.start:
        return incident, None
    what = incident.quiet_after or "an earlier incident"
    left = (alert - start).total_seconds()
    if left < settings.minimum_seconds:
        return incident, EvidenceGap(
            source="normal period",
            reason=f"includes {what}: it resolved at {_clock(quiet)}, {_format_span((alert - quiet).total_seconds())} "
            f"before this alert, which leaves less than {_format_span(settings.minimum_seconds)} after "
            f"{_format_span(settings.settle_seconds)} of settling (OPSAGENT_NORMAL_PERIOD__SETTLE_SECONDS, "
            "OPSAGENT_NORMAL_PERIOD__MINIMUM_SECONDS); its signals may be taken for this incident's",
        )
    window = TimeWindow(start=start, end=incident.window.end)
    gap = EvidenceGap(
        source="normal period",
        reason=f"starts at {_clock(start)}, after {what} resolved at {_clock(quiet)} (+"
        f"{_format_span(settings.settle_seconds)} for rate windows, OPSAGENT_NORMAL_PERIOD__SETTLE_SECONDS): "
        f"{_format_span(left)} before the alert, {_format_span(settings.wanted_minutes * 60)} wanted; the "
        "earlier trouble is neither taken as normal nor as this incident",
    )
    return incident.model_copy(update={"window": window}), gap


def complete(bundle: EvidenceBundle, topology: TopologySettings, normal_period: NormalPeriodSettings) -> None:
    """Add the derived call graph, fit the window to the history, and name every missing piece."""
    add_peer_topology(bundle, topology)
    bundle.gaps.extend(fit_history(bundle, normal_period))
    bundle.gaps.extend(call_graph_gaps(bundle))
    bundle.gaps.extend(trace_gaps(bundle))

"""The bundle's logs as a ``LogSummary``: ``analysis.log_digest.condense`` (Drain3 templates) fed with a split.

This is the one function behind every condensed view of the logs — the investigation report's "Log
templates" section and the LLM's prompt and ``query_logs`` tool — so they never disagree.

The split between "normal" and "incident" is the engine's (``split.event_split``): the same change
point the engine compares log events at, found in the data inside the range the alert bounds.
Drain3 mines a few thousand lines a second, so very large windows are thinned first (every k-th
line of each period, error lines all kept up to the cap); the summary then says how many lines it
saw, and its counts are those of the lines seen.
"""

from __future__ import annotations

from collections.abc import Sequence

from opsagent.analysis.log_digest import LogTemplate, condense
from opsagent.analysis.logs import TEMPLATE_SCAN_CHARS, line_template_and_error
from opsagent.analysis.split import event_split
from opsagent.domain import EvidenceBundle, LogRecord, LogSummary, LogTemplateSummary, Suspect
from opsagent.domain.evidence import LogChange

# A template counts as "increased" when its incident-period rate is this many times the normal one.
INCREASE_RATIO = 2.0
DEFAULT_BUDGET_CHARS = 3_000
MAX_LINES = 10_000


def log_split(bundle: EvidenceBundle) -> float:
    """Epoch seconds where the normal period ends and the incident begins: the engine's events' split."""
    return event_split(bundle)


def _thin(logs: Sequence[LogRecord], split: float, cap: int) -> list[LogRecord]:
    """At most ``cap`` lines: all error lines first (up to half the cap), then every k-th line of
    each period, so a rare new error is not sampled away and both periods stay represented."""
    errors = [r for r in logs if line_template_and_error(r.level, r.message[:TEMPLATE_SCAN_CHARS])[1]][
        : cap // 2
    ]
    kept = {id(r) for r in errors}
    rest = [r for r in logs if id(r) not in kept]
    room = cap - len(errors)
    before = [r for r in rest if r.timestamp < split]
    after = [r for r in rest if r.timestamp >= split]
    share_after = room // 2 if before else room
    picked: list[LogRecord] = [*errors]
    for part, n in ((after, share_after), (before, room - share_after)):
        if part and n > 0:
            step = max(1, -(-len(part) // n))
            picked.extend(part[::step])
    return sorted(picked, key=lambda r: r.timestamp)


def _change(t: LogTemplate, normal_s: float, incident_s: float) -> LogChange:
    if t.is_new:
        return "new"
    if t.incident_count and t.rate_ratio(normal_s, incident_s) > INCREASE_RATIO:
        return "increased"
    return "steady"


def summarize_logs(
    bundle: EvidenceBundle,
    suspects: Sequence[Suspect] = (),
    *,
    service: str | None = None,
    budget_chars: int = DEFAULT_BUDGET_CHARS,
    examples: int = 1,
    max_lines: int = MAX_LINES,
) -> LogSummary:
    """The bundle's logs (one service's, if given) condensed within ``budget_chars``.

    Templates come in ``condense``'s order: new errors, increased errors, other new, other
    increased, then the rest; each with up to ``examples`` raw lines from the incident period.
    """
    logs = [r for r in bundle.logs if service is None or r.service == service]
    split = log_split(bundle)
    seen = _thin(logs, split, max_lines) if len(logs) > max_lines else logs
    window = bundle.incident.window
    digest = condense(
        seen, split, window=(window.start_s, window.end_s), budget_chars=budget_chars, examples=examples
    )
    return LogSummary(
        total_lines=len(logs),
        template_count=digest.template_count,
        omitted=digest.omitted,
        split=split,
        sampled_lines=len(seen) if len(seen) < len(logs) else None,
        templates=[
            LogTemplateSummary(
                service=t.service,
                template=t.template,
                normal_count=t.normal_count,
                incident_count=t.incident_count,
                error=t.error,
                change=_change(t, digest.normal_seconds, digest.incident_seconds),
                examples=list(t.examples),
            )
            for t in digest.templates
        ],
    )

"""Log condensation for people and the LLM: templates with counts per period, within a budget.

What reaches a report or an LLM is ``condense()``: the engine's own templates (``logs.line_templates``:
masked heads clustered by Drain3) with counts in the normal period and in the incident, new and increased error templates first, a few raw examples each, within a
character budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from opsagent.analysis.logs import line_templates
from opsagent.domain import LogRecord

_EXAMPLE_CHARS = 200


@dataclass
class LogTemplate:
    """One template of one service, counted in the normal period and in the incident."""

    service: str
    template: str
    normal_count: int = 0
    incident_count: int = 0
    error: bool = False
    examples: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.normal_count == 0 and self.incident_count > 0

    def rate_ratio(self, normal_seconds: float, incident_seconds: float) -> float:
        """Incident rate over normal rate, add-one smoothed."""
        return (self.incident_count / max(incident_seconds, 60.0)) / (
            (self.normal_count + 1) / max(normal_seconds, 60.0)
        )


@dataclass
class LogDigest:
    """What the logs say, small enough for a report or a prompt."""

    templates: list[LogTemplate]
    total_lines: int
    template_count: int
    omitted: int
    normal_seconds: float
    incident_seconds: float

    def render(self) -> str:
        lines = [
            f"{self.total_lines} log lines, {self.template_count} templates"
            + (f" ({self.omitted} not shown)" if self.omitted else "")
        ]
        lines.extend(_render_template(t) for t in self.templates)
        return "\n".join(lines)


def _render_template(t: LogTemplate) -> str:
    tag = "NEW " if t.is_new else ""
    tag += "ERROR " if t.error else ""
    head = f"- [{tag.strip() or 'info'}] {t.service}: {t.template} (normal {t.normal_count}, incident {t.incident_count})"
    return "\n".join([head, *(f"    e.g. {e}" for e in t.examples)])


def _priority(t: LogTemplate, normal_s: float, incident_s: float) -> tuple[int, float]:
    """New error templates, then increased error templates, then other new ones, then the rest."""
    ratio = t.rate_ratio(normal_s, incident_s)
    if t.error and t.is_new:
        group = 0
    elif t.error and ratio > 2.0:
        group = 1
    elif t.is_new:
        group = 2
    elif ratio > 2.0:
        group = 3
    else:
        group = 4
    return group, -math.log1p(t.incident_count) * (1.0 + math.log(max(ratio, 1.0)))


def condense(
    logs: list[LogRecord],
    split: float,
    *,
    window: tuple[float, float] | None = None,
    budget_chars: int = 4_000,
    examples: int = 2,
) -> LogDigest:
    """Template the lines (``logs.line_templates``); keep the most telling templates within ``budget_chars``.

    ``split`` divides the normal period (before) from the incident (after). Templates are ordered
    new-error, increased-error, new, increased, rest; each carries up to ``examples`` raw lines from
    the incident. The rendered digest never exceeds ``budget_chars``.
    """
    start = window[0] if window else min((r.timestamp for r in logs), default=split)
    end = window[1] if window else max((r.timestamp for r in logs), default=split)
    normal_s, incident_s = max(split - start, 0.0), max(end - split, 0.0)
    by_template: dict[tuple[str, str], LogTemplate] = {}
    for rec, (template, error) in zip(logs, line_templates(logs), strict=True):
        entry = by_template.get((rec.service, template))
        if entry is None:
            entry = by_template[(rec.service, template)] = LogTemplate(rec.service, template[:_EXAMPLE_CHARS])
        if rec.timestamp < split:
            entry.normal_count += 1
        else:
            entry.incident_count += 1
            if len(entry.examples) < examples:
                entry.examples.append(rec.message[:_EXAMPLE_CHARS])
        entry.error = entry.error or error
    ranked = sorted(by_template.values(), key=lambda t: _priority(t, normal_s, incident_s))
    kept: list[LogTemplate] = []
    digest = LogDigest([], len(logs), len(ranked), 0, normal_s, incident_s)
    used = len(digest.render())
    for t in ranked:
        cost = len(_render_template(t)) + 1
        if used + cost > budget_chars:
            continue
        kept.append(t)
        used += cost
    digest.templates = kept
    digest.omitted = len(ranked) - len(kept)
    # The header grows by the "(n not shown)" note; drop tail templates until the budget holds.
    while kept and len(digest.render()) > budget_chars:
        kept.pop()
        digest.omitted += 1
    return digest

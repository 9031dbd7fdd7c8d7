"""The evidence as the model reads it: bounded JSON summaries of suspects, runbooks, log templates
and series, shared by the tools, the first prompt and the chat's context. Pure: no I/O."""

from __future__ import annotations

import statistics

from pydantic import JsonValue

from opsagent.analysis.split import normal_end
from opsagent.domain import (
    EvidenceBundle,
    EvidenceItem,
    LogTemplateSummary,
    MetricSeries,
    RunbookMatch,
    Suspect,
)

# Bounds on what goes into the prompt and into any one tool result.
TOP_SUSPECTS = 5
TOP_TEMPLATES = 12
TOP_RUNBOOKS = 5
MAX_SERIES = 12
MAX_EDGES = 80
MAX_TEXT = 240


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float) -> float:
    return float(f"{value:.4g}")


def item_json(item: EvidenceItem) -> dict[str, JsonValue]:
    return {"id": item.id, "kind": item.kind, "summary": clip(item.summary), "score": item.score}


def suspect_json(suspect: Suspect) -> dict[str, JsonValue]:
    return {
        "service": suspect.service,
        "score": suspect.score,
        "fault_type": suspect.fault_type.value,
        "evidence": [item_json(e) for e in suspect.evidence],
    }


def runbook_json(book: RunbookMatch, *, steps: int = 0) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {
        "id": book.id,
        "title": clip(book.title),
        "fault_types": list(book.fault_types),
        "actions": [{"id": a.id, "risk": a.risk.value, "params": a.params} for a in book.actions],
    }
    if steps:
        out["remediation"] = [clip(s) for s in book.remediation[:steps]]
    return out


def template_json(t: LogTemplateSummary) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {
        "service": t.service,
        "template": clip(t.template),
        "change": t.change,
        "before": t.normal_count,
        "during": t.incident_count,
        "error": t.error,
    }
    if t.examples:
        out["example"] = clip(t.examples[0])
    return out


def split_time(bundle: EvidenceBundle) -> float:
    """Where "before the incident" ends: the engine's split, from the data (``analysis.split``)."""
    return normal_end(bundle)


def series_summary(series: MetricSeries, cut: float) -> dict[str, JsonValue]:
    """Baseline (median before ``cut``), peak (largest deviation after it) and the last value."""
    pairs = [(t, v) for t, v in zip(series.timestamps, series.values, strict=False) if v == v]
    before = [v for t, v in pairs if t < cut]
    after = [v for t, v in pairs if t >= cut]
    out: dict[str, JsonValue] = {
        "id": series.id,
        "service": series.service,
        "signal": series.signal,
        "kind": series.kind.value,
        "unit": series.unit,
        "points": len(pairs),
    }
    if not pairs:
        return out
    baseline = statistics.median(before) if before else statistics.median(v for _, v in pairs)
    out["baseline"] = _num(baseline)
    if after:
        peak = max(after, key=lambda v: abs(v - baseline))
        out["peak"] = _num(peak)
        out["last"] = _num(after[-1])
    return out

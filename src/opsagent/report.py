"""Reports of an investigation: a JSON document with stable names, Markdown, and terminal text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opsagent.domain import Investigation


def _when(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def to_json(inv: Investigation) -> dict[str, Any]:
    """The JSON report. Names here are a public contract: add fields, don't rename them."""
    decisions = {id(d.action): d for d in inv.decisions}
    return {
        "incident": {
            "id": inv.incident.id,
            "title": inv.incident.title,
            "alerts": [
                {"name": a.name, "status": a.status, "labels": a.labels, "starts_at": a.starts_at.isoformat()}
                for a in inv.incident.alerts
            ],
        },
        "autonomy_level": inv.autonomy_level.value,
        "reasoner": inv.findings.reasoner,
        "summary": inv.findings.summary,
        "root_causes": [
            {
                "service": rc.service,
                "fault_type": rc.fault_type.value,
                "confidence": rc.confidence,
                "summary": rc.summary,
                "evidence": [
                    {
                        "id": e.id,
                        "kind": e.kind,
                        "summary": e.summary,
                        "signal": e.signal,
                        "baseline": e.baseline,
                        "peak": e.peak,
                        "onset": _when(e.onset),
                    }
                    for e in rc.evidence
                ],
            }
            for rc in inv.findings.root_causes
        ],
        "ranking": inv.findings.ranking,
        "runbooks": [{"id": r.id, "title": r.title, "score": r.score} for r in inv.runbooks],
        "remediation": inv.findings.remediation,
        "actions": [
            {
                "id": d.action.action_id,
                "risk": d.action.risk.value,
                "target": d.action.target.service,
                "params": d.action.params,
                "decision": d.outcome.value,
                "reason": d.reason,
            }
            for d in decisions.values()
        ],
        "gaps": [{"source": g.source, "reason": g.reason} for g in inv.gaps],
        "notes": inv.findings.notes,
        "trace": inv.trace.model_dump(mode="json"),
        "seconds": inv.seconds,
    }


def to_markdown(inv: Investigation) -> str:
    """A report an on-call engineer can paste into a ticket."""
    lines = [f"# {inv.incident.title}", ""]
    lines.append(
        f"Incident `{inv.incident.id}` · autonomy {inv.autonomy_level.value} · reasoner {inv.findings.reasoner}"
        f" · {inv.seconds:.2f}s"
    )
    lines += ["", inv.findings.summary, ""]
    if inv.findings.root_causes:
        lines += ["## Likely root causes", ""]
        for i, rc in enumerate(inv.findings.root_causes, start=1):
            lines.append(f"{i}. **{rc.service}** — {rc.fault_type.value}, confidence {rc.confidence:.2f}")
            lines.extend(f"   - `{e.id}`: {e.summary}" for e in rc.evidence)
        lines.append("")
    if inv.runbooks:
        lines += ["## Runbooks", ""]
        lines.extend(f"- **{r.title}** (`{r.id}`, score {r.score:.2f}) — {r.reason}" for r in inv.runbooks)
        lines.append("")
    if inv.findings.remediation:
        lines += ["## Remediation", ""]
        lines.extend(f"{i}. {step}" for i, step in enumerate(inv.findings.remediation, start=1))
        lines.append("")
    if inv.decisions:
        lines += ["## Actions", "", "| action | risk | target | decision | why |", "|---|---|---|---|---|"]
        lines.extend(
            f"| {d.action.action_id} | {d.action.risk.value} | {d.action.target.service} | {d.outcome.label} "
            f"| {d.reason} |"
            for d in inv.decisions
        )
        lines.append("")
    if inv.gaps:
        lines += ["## Missing evidence", ""]
        lines.extend(f"- {g.source}: {g.reason}" for g in inv.gaps)
        lines.append("")
    if inv.findings.notes:
        lines += ["## Notes", ""]
        lines.extend(f"- {n}" for n in inv.findings.notes)
        lines.append("")
    ev = inv.evidence
    lines.append(
        f"_Evidence: {ev.metrics} series, {ev.log_lines} log lines, {ev.spans} spans, "
        f"{ev.services} services, {ev.edges} call edges, {ev.runbooks} runbooks._"
    )
    return "\n".join(lines) + "\n"

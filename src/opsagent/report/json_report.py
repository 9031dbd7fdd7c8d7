"""The JSON report: the document the API, the console and ``opsagent investigate --json`` return.

Names here are a public contract: add fields, don't rename them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opsagent.autonomy.approvals import ActionRequest
from opsagent.domain import Alert, Investigation
from opsagent.report.action_output import command_status, with_summary
from opsagent.report.labels import outcome, reasoner_detail, status_label
from opsagent.report.links import alert_links, dashboard_link, web_link

# Log templates shown in a report: the top new or increased ones (the summary is already budgeted).
REPORT_TEMPLATES = 8


def _when(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _alert_json(a: Alert) -> dict[str, Any]:
    return {
        "name": a.name,
        "status": a.status,
        "labels": a.labels,
        "starts_at": a.starts_at.isoformat(),
        "severity": a.labels.get("severity"),
        "annotations": a.annotations,
        "runbook_url": web_link(a.annotations.get("runbook_url")),
        "generator_url": web_link(a.generator_url),
        "links": alert_links(a.labels, a.annotations, a.generator_url),
    }


def log_templates(inv: Investigation) -> dict[str, Any] | None:
    """The report's "Log templates": the top new or increased templates, errors first, one example each."""
    logs = inv.log_summary
    if logs is None:
        return None
    rows = [t for t in logs.templates if t.change != "steady"][:REPORT_TEMPLATES]
    return {
        "log_lines": logs.total_lines,
        "template_count": logs.template_count,
        "sampled_lines": logs.sampled_lines,
        "split": _when(logs.split),
        "templates": [
            {
                "service": t.service,
                "template": t.template,
                "change": t.change,
                "error": t.error,
                "normal_count": t.normal_count,
                "incident_count": t.incident_count,
                "example": t.examples[0] if t.examples else None,
            }
            for t in rows
        ],
    }


def _action_rows(
    inv: Investigation,
    requests: Sequence[ActionRequest] | None,
    outputs: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """What happened to each action: the stored requests when there are any, else the first-pass plan.

    The pipeline's decisions are made before anything runs, without the ledger; the requests say what
    the runner actually did (a rate limit may have held an action the plan expected to run).
    """
    if requests:
        return [
            {
                "id": r.action.action_id,
                "risk": r.action.risk.value,
                "target": r.action.target.service,
                "params": r.action.params,
                "decision": outcome(r).value,
                "reason": r.reason,
                "source": "runner",
                "request_id": r.id,
                "status": r.status.value,
                "status_label": status_label(r),
                "automatic": r.automatic,
                "namespace": r.action.target.namespace,
                "missing_params": r.action.missing_params,
                "decided_by": r.decided_by,
                "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                "decision_note": r.decision_note,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "result": with_summary(r.result, (outputs or {}).get(r.id)),
                "output": (outputs or {}).get(r.id),
                "commands": command_status((outputs or {}).get(r.id)),
            }
            for r in requests
        ]
    return [
        {
            "id": d.action.action_id,
            "risk": d.action.risk.value,
            "target": d.action.target.service,
            "params": d.action.params,
            "decision": d.outcome.value,
            "reason": d.reason,
            "source": "plan",
            "status": None,
            "status_label": d.outcome.label,
            "missing_params": d.action.missing_params,
        }
        for d in inv.decisions
    ]


def _root_causes(inv: Investigation) -> list[dict[str, Any]]:
    return [
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
                    "untrusted": e.untrusted,
                }
                for e in rc.evidence
            ],
        }
        for rc in inv.findings.root_causes
    ]


def to_json(
    inv: Investigation,
    requests: Sequence[ActionRequest] | None = None,
    *,
    dashboard_url: str | None = None,
    outputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON report.

    ``requests``: the incident's stored action requests; with them, ``actions`` reports what actually
    happened (``source: runner``) instead of the pipeline's first-pass plan (``source: plan``).
    ``dashboard_url``: the configured dashboard template (``OPSAGENT_CONSOLE__DASHBOARD_URL``);
    ``outputs``: what each executed request printed, by request id (its per-command status is parsed).
    """
    dashboard = dashboard_link(dashboard_url, inv)
    links = [{"text": "dashboard", "href": dashboard}] if dashboard else []
    for a in inv.incident.alerts:
        links += [x for x in alert_links(a.labels, a.annotations, a.generator_url) if x not in links]
    return {
        "incident": {
            "id": inv.incident.id,
            "title": inv.incident.title,
            "alerts": [_alert_json(a) for a in inv.incident.alerts],
        },
        "links": links,
        "autonomy_level": inv.autonomy_level.value,
        "reasoner": inv.findings.reasoner,
        "reasoner_detail": reasoner_detail(inv.trace, inv.findings.reasoner),
        "fell_back": inv.trace.fell_back,
        "summary": inv.findings.summary,
        "root_causes": _root_causes(inv),
        "ranking": inv.findings.ranking,
        "log_templates": log_templates(inv),
        "runbooks": [{"id": r.id, "title": r.title, "score": r.score} for r in inv.runbooks],
        "remediation": inv.findings.remediation,
        "actions": _action_rows(inv, requests, outputs),
        "gaps": [{"source": g.source, "reason": g.reason} for g in inv.gaps],
        "notes": inv.findings.notes,
        # Outside text that reads as instructions to an agent: never acted on (issue 17).
        "untrusted_text": [f.model_dump(mode="json") for f in inv.findings.untrusted],
        "trace": inv.trace.model_dump(mode="json"),
        "seconds": inv.seconds,
    }

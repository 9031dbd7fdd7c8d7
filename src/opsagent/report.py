"""Reports of an investigation: a JSON document with stable names, Markdown, and terminal text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from opsagent.autonomy.approvals import ActionRequest, ActionStatus
from opsagent.domain import DecisionOutcome, Investigation, ProposedAction, ReasonerTrace

# Log templates shown in a report: the top new or increased ones (the summary is already budgeted).
REPORT_TEMPLATES = 8


def _when(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


# What the gate's decision was, as seen from where the request ended up.
_WAITED = {
    ActionStatus.PENDING,
    ActionStatus.APPROVED,
    ActionStatus.REJECTED,
    ActionStatus.EXPIRED,
    ActionStatus.BLOCKED,
}
_STATUS_LABEL = {
    ActionStatus.PENDING: "awaits approval",
    ActionStatus.APPROVED: "approved, not run yet",
    ActionStatus.REJECTED: "rejected",
    ActionStatus.EXPIRED: "expired unapproved",
    ActionStatus.NOT_PROPOSED: "not proposed at this level",
    ActionStatus.DENIED: "denied",
    ActionStatus.BLOCKED: "approved, blocked at run time",
    ActionStatus.DRY_RUN: "dry run, nothing changed",
    ActionStatus.RUNNING: "running",
    ActionStatus.VERIFYING: "running, being verified",
    ActionStatus.SUCCEEDED: "succeeded",
    ActionStatus.FAILED: "failed",
    ActionStatus.ROLLED_BACK: "failed verification, rolled back",
}


def _outcome(req: ActionRequest) -> DecisionOutcome:
    if req.status is ActionStatus.NOT_PROPOSED:
        return DecisionOutcome.NOT_PROPOSED
    if req.status is ActionStatus.DENIED:
        return DecisionOutcome.DENIED
    if req.status in _WAITED or not req.automatic:
        return DecisionOutcome.AWAIT_APPROVAL
    return DecisionOutcome.EXECUTE


def status_label(req: ActionRequest) -> str:
    """The request's state in words, with who approved or rejected it."""
    label = _STATUS_LABEL[req.status]
    who = req.decided_by or "a person"
    if req.status in (
        ActionStatus.RUNNING,
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.ROLLED_BACK,
    ):
        label += " (automatic)" if req.automatic else f" (approved by {who})"
    elif req.status is ActionStatus.REJECTED:
        label += f" by {who}"
    elif req.status in (ActionStatus.APPROVED, ActionStatus.BLOCKED):
        label += f" (approved by {who})"
    return label


def reasoner_detail(trace: ReasonerTrace, findings_reasoner: str) -> str:
    """Which reasoner produced the findings, in words: "llm (model m)", "llm (fell back to offline: why)"."""
    if trace.fell_back:
        why = trace.fallback_reason or "see the notes"
        return f"{trace.reasoner} (fell back to {findings_reasoner}: {why})"
    if trace.reasoner == "llm" and trace.model:
        return f"llm (model {trace.model})"
    return findings_reasoner


# The line the bundled diagnostics scripts print after each command (scripts/actions/collect-diagnostics).
_COMMAND_STATUS = re.compile(r"^-- status (?P<command>.+?): (?P<code>-?\d+)\s*$", re.MULTILINE)
# ... and the count they end with.
_COMMAND_SUMMARY = re.compile(r"^-- summary: (?P<text>.+?)\s*$", re.MULTILINE)


def _with_summary(result: str | None, output: str | None) -> str | None:
    """The executor's result ("collect-diagnostics exited 0") with the script's own count appended."""
    found = _COMMAND_SUMMARY.search(output or "")
    if found is None:
        return result
    return f"{result}; {found['text']}" if result else found["text"]


def command_status(output: str | None) -> list[dict[str, Any]]:
    """Per-command results a diagnostics script reported in its output (``-- status NAME: CODE``)."""
    if not output:
        return []
    return [
        {"command": m["command"], "status": int(m["code"]), "ok": int(m["code"]) == 0}
        for m in _COMMAND_STATUS.finditer(output)
    ]


def _web_link(url: str | None) -> str | None:
    """Only http(s) links reach a page: an alert's annotations are text anyone's rule can set."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def alert_links(
    labels: Mapping[str, str], annotations: Mapping[str, str], generator_url: str | None
) -> list[dict[str, str]]:
    """An alert's own links: its runbook_url, its source (Prometheus) and dashboard annotations."""
    out: list[dict[str, str]] = []
    for text, url in (
        ("runbook", annotations.get("runbook_url") or annotations.get("runbook")),
        ("source (generatorURL)", generator_url),
        ("dashboard", annotations.get("dashboard_url") or annotations.get("dashboard")),
    ):
        safe = _web_link(url)
        if safe:
            out.append({"text": text, "href": safe})
    return out


def dashboard_link(template: str | None, inv: Investigation) -> str | None:
    """The configured dashboard template filled from the incident (values URL-encoded), or None."""
    if not template:
        return None
    inc = inv.incident
    labels = inc.alerts[0].labels if inc.alerts else {}
    service = (
        (inv.findings.root_causes[0].service if inv.findings.root_causes else None)
        or inc.service_hint
        or labels.get("service", "")
    )
    values = {
        "service": service,
        "namespace": inc.namespace or labels.get("namespace", ""),
        "alertname": labels.get("alertname", ""),
        "start_ms": str(int(inc.window.start.timestamp() * 1000)),
        "end_ms": str(int(inc.window.end.timestamp() * 1000)),
        "start": inc.window.start.isoformat(),
        "end": inc.window.end.isoformat(),
    }
    try:
        return _web_link(template.format_map({k: quote(v, safe="") for k, v in values.items()}))
    except (KeyError, IndexError, ValueError):
        return None


def _alert_json(a: Any) -> dict[str, Any]:
    return {
        "name": a.name,
        "status": a.status,
        "labels": a.labels,
        "starts_at": a.starts_at.isoformat(),
        "severity": a.labels.get("severity"),
        "annotations": a.annotations,
        "runbook_url": _web_link(a.annotations.get("runbook_url")),
        "generator_url": _web_link(a.generator_url),
        "links": alert_links(a.labels, a.annotations, a.generator_url),
    }


def _log_templates(inv: Investigation) -> dict[str, Any] | None:
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
                "decision": _outcome(r).value,
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
                "result": _with_summary(r.result, (outputs or {}).get(r.id)),
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


def to_json(
    inv: Investigation,
    requests: Sequence[ActionRequest] | None = None,
    *,
    dashboard_url: str | None = None,
    outputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON report. Names here are a public contract: add fields, don't rename them.

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
                        "untrusted": e.untrusted,
                    }
                    for e in rc.evidence
                ],
            }
            for rc in inv.findings.root_causes
        ],
        "ranking": inv.findings.ranking,
        "log_templates": _log_templates(inv),
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


def to_markdown(
    inv: Investigation,
    requests: Sequence[ActionRequest] | None = None,
    *,
    dashboard_url: str | None = None,
    outputs: Mapping[str, str] | None = None,
) -> str:
    """A report an on-call engineer can paste into a ticket (arguments as for ``to_json``)."""
    lines = [f"# {inv.incident.title}", ""]
    lines.append(
        f"Incident `{inv.incident.id}` · autonomy {inv.autonomy_level.value}"
        f" · reasoner {reasoner_detail(inv.trace, inv.findings.reasoner)} · {inv.seconds:.2f}s"
    )
    dashboard = dashboard_link(dashboard_url, inv)
    if dashboard:
        lines += ["", f"Dashboard: {dashboard}"]
    lines.extend(_alert_lines(inv))
    if inv.trace.fell_back:
        lines += [
            "",
            f"> **The {inv.trace.reasoner} reasoner failed; these are the {inv.findings.reasoner} findings.**",
        ]
    lines.extend(_untrusted_lines(inv))
    lines += ["", inv.findings.summary, ""]
    if inv.findings.root_causes:
        lines += ["## Likely root causes", ""]
        for i, rc in enumerate(inv.findings.root_causes, start=1):
            lines.append(f"{i}. **{rc.service}** — {rc.fault_type.value}, confidence {rc.confidence:.2f}")
            lines.extend(
                f"   - `{e.id}`: {e.summary}"
                + (" **(reads as instructions: never acted on)**" if e.untrusted else "")
                for e in rc.evidence
            )
        lines.append("")
    lines.extend(_log_lines(inv))
    if inv.runbooks:
        lines += ["## Runbooks", ""]
        lines.extend(f"- **{r.title}** (`{r.id}`, score {r.score:.2f}) — {r.reason}" for r in inv.runbooks)
        lines.append("")
    if inv.findings.remediation:
        lines += ["## Remediation", ""]
        lines.extend(f"{i}. {step}" for i, step in enumerate(inv.findings.remediation, start=1))
        lines.append("")
    if requests:
        lines += [
            "## Actions",
            "",
            "| action | risk | target | status | why | result |",
            "|---|---|---|---|---|---|",
        ]
        lines.extend(
            f"| {r.action.action_id} | {r.action.risk.value} | {r.action.target.service} | {status_label(r)} "
            f"| {_cell(r.reason)} | {_cell(_with_summary(r.result, (outputs or {}).get(r.id)) or '')} |"
            for r in requests
        )
        lines.append("")
        lines.extend(_needs_params([r.action for r in requests if r.status is ActionStatus.PENDING]))
        lines.extend(_output_lines(requests, outputs or {}))
    elif inv.decisions:
        lines += ["## Actions", "", "| action | risk | target | decision | why |", "|---|---|---|---|---|"]
        lines.extend(
            f"| {d.action.action_id} | {d.action.risk.value} | {d.action.target.service} | {d.outcome.label} "
            f"| {_cell(d.reason)} |"
            for d in inv.decisions
        )
        lines.append("")
        lines.extend(_needs_params([d.action for d in inv.decisions]))
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


def _alert_lines(inv: Investigation) -> list[str]:
    """The alerts as on-call reads them first: name, severity, start, labels, their links."""
    if not inv.incident.alerts:
        return []
    out = ["", "## Alerts", ""]
    for a in inv.incident.alerts:
        severity = a.labels.get("severity")
        out.append(
            f"- **{a.name}** ({a.status}{', ' + severity if severity else ''}), started "
            f"{a.starts_at.isoformat()}"
        )
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        if labels:
            out.append(f"  - labels: {_code(labels)}")
        out.extend(
            f"  - {link['text']}: {link['href']}"
            for link in alert_links(a.labels, a.annotations, a.generator_url)
        )
    return out


FENCE = "`" * 3


def _output_lines(requests: Sequence[ActionRequest], outputs: Mapping[str, str]) -> list[str]:
    """What each executed action printed, with the per-command status its script reported."""
    out: list[str] = []
    for r in requests:
        text = outputs.get(r.id)
        if not text:
            continue
        out += [f"### Output of {r.action.action_id} on {r.action.target.service}", ""]
        for c in command_status(text):
            state = "ok" if c["ok"] else f"FAILED (exit {c['status']})"
            out.append(f"- {_code(c['command'])}: {state}")
        out += ["", FENCE, text.replace(FENCE, "'" * 3).rstrip(), FENCE, ""]
    return out


def _code(text: str) -> str:
    """Untrusted log text as a Markdown code span: shown literally, never rendered."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


def _log_lines(inv: Investigation) -> list[str]:
    logs = _log_templates(inv)
    if logs is None or not logs["templates"]:
        return []
    seen = f", {logs['sampled_lines']} of them condensed" if logs["sampled_lines"] else ""
    out = [
        "## Log templates",
        "",
        f"New or increased since {logs['split'] or 'the incident began'} ({logs['log_lines']} lines{seen}, "
        f"{logs['template_count']} templates):",
        "",
    ]
    for t in logs["templates"]:
        tag = f"{t['change']} error" if t["error"] else t["change"]
        out.append(
            f"- **{tag}** {t['service']}: {_code(t['template'])} — {t['normal_count']} before, "
            f"{t['incident_count']} during"
        )
        if t["example"]:
            out.append(f"  - e.g. {_code(t['example'])}")
    return [*out, ""]


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _needs_params(actions: Sequence[ProposedAction]) -> list[str]:
    """A list for the person approving: which parameters they have to supply, per action."""
    todo = [a for a in actions if a.missing_params]
    if not todo:
        return []
    out = ["Needs parameters before it can run (give them when approving):", ""]
    out += [
        f"- `{a.action_id}` on {a.target.service}: needs parameters: {', '.join(a.missing_params)}"
        + (f" (derived: {', '.join(f'{k}={v}' for k, v in a.params.items())})" if a.params else "")
        for a in todo
    ]
    return [*out, ""]


# --- untrusted text (issue 17; autonomy/untrusted.py finds it) -------------------------------------


def _untrusted_lines(inv: Investigation) -> list[str]:
    """A warning section for outside text that reads as instructions to an agent (shown literally)."""
    flags = inv.findings.untrusted
    if not flags:
        return []
    out = [
        "",
        "## Warning: text that reads as instructions to an agent",
        "",
        "This text came from outside (logs, alert annotations, runbooks, chat). opsagent never acts on it;"
        " it may be an attempt to steer an automated responder.",
        "",
    ]
    out += [f"- {f.where} ({f.why}): {_code(f.excerpt)}" for f in flags]
    return out

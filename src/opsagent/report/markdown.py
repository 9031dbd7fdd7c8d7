"""The Markdown report: what an on-call engineer pastes into a ticket.

Text from outside (log lines, labels, annotations, command output) is shown literally, in code spans
or fences, never rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opsagent.autonomy.approvals import ActionRequest, ActionStatus
from opsagent.domain import Investigation, ProposedAction
from opsagent.report.action_output import command_status, with_summary
from opsagent.report.json_report import log_templates
from opsagent.report.labels import reasoner_detail, status_label
from opsagent.report.links import alert_links, dashboard_link

FENCE = "`" * 3


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
    lines += _section(
        "Runbooks", [f"- **{r.title}** (`{r.id}`, score {r.score:.2f}) — {r.reason}" for r in inv.runbooks]
    )
    lines += _section(
        "Remediation", [f"{i}. {step}" for i, step in enumerate(inv.findings.remediation, start=1)]
    )
    lines.extend(_action_lines(inv, requests, outputs or {}))
    lines += _section("Missing evidence", [f"- {g.source}: {g.reason}" for g in inv.gaps])
    lines += _section("Notes", [f"- {n}" for n in inv.findings.notes])
    ev = inv.evidence
    lines.append(
        f"_Evidence: {ev.metrics} series, {ev.log_lines} log lines, {ev.spans} spans, "
        f"{ev.services} services, {ev.edges} call edges, {ev.runbooks} runbooks._"
    )
    return "\n".join(lines) + "\n"


def _section(title: str, rows: list[str]) -> list[str]:
    """A titled list, or nothing when there is nothing to list."""
    return [f"## {title}", "", *rows, ""] if rows else []


def _action_lines(
    inv: Investigation, requests: Sequence[ActionRequest] | None, outputs: Mapping[str, str]
) -> list[str]:
    """The actions table: what the runner did with each request, else the pipeline's first-pass plan."""
    if requests:
        out = [
            "## Actions",
            "",
            "| action | risk | target | status | why | result |",
            "|---|---|---|---|---|---|",
        ]
        out.extend(
            f"| {r.action.action_id} | {r.action.risk.value} | {r.action.target.service} | {status_label(r)} "
            f"| {_cell(r.reason)} | {_cell(with_summary(r.result, outputs.get(r.id)) or '')} |"
            for r in requests
        )
        out.append("")
        out.extend(_needs_params([r.action for r in requests if r.status is ActionStatus.PENDING]))
        out.extend(_output_lines(requests, outputs))
        return out
    if not inv.decisions:
        return []
    out = ["## Actions", "", "| action | risk | target | decision | why |", "|---|---|---|---|---|"]
    out.extend(
        f"| {d.action.action_id} | {d.action.risk.value} | {d.action.target.service} | {d.outcome.label} "
        f"| {_cell(d.reason)} |"
        for d in inv.decisions
    )
    out.append("")
    out.extend(_needs_params([d.action for d in inv.decisions]))
    return out


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
    logs = log_templates(inv)
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


def _untrusted_lines(inv: Investigation) -> list[str]:
    """A warning section for outside text that reads as instructions to an agent (shown literally).

    ``autonomy/untrusted.py`` finds it; the report only shows it.
    """
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

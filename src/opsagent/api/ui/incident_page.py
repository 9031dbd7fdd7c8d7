"""What the incident page shows, gathered from the store (sync: the views call it in a worker thread).

The page reads the same things the API's incident and report endpoints do: the stored alerts, the
latest investigation as ``report.to_json`` shapes it (with the action requests the runner holds),
the autonomy audit trail, and the incident's conversation.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select

from opsagent.api.report_html import action_outputs
from opsagent.api.runtime import Runtime
from opsagent.api.ui.charts import cause_charts
from opsagent.errors import OpsAgentError, RunbookFormatError
from opsagent.evidence.runbooks import parse_runbook
from opsagent.report import alert_links, to_json, to_markdown
from opsagent.store import conversations, investigations
from opsagent.store import incidents as incident_store
from opsagent.store.actions import incident_requests
from opsagent.store.models import ConversationRow

log = logging.getLogger(__name__)

# Charts per root cause, for the top causes only: the page must stay quick to read and to render.
CHARTED_CAUSES = 3
CHARTS_PER_CAUSE = 4
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False})


@lru_cache(maxsize=64)
def _runbook_html(path: str, mtime: float) -> Markup:
    """A runbook's Markdown body as HTML; raw HTML in the file is shown as text, not rendered."""
    return Markup(_MD.render(parse_runbook(Path(path)).body))


def _runbook(match: dict[str, Any], path: str) -> dict[str, Any] | None:
    try:
        file = Path(path)
        html = _runbook_html(str(file), file.stat().st_mtime)
    except (OSError, RunbookFormatError):
        return None
    return {"id": match["id"], "title": match["title"], "score": match.get("score"), "html": html}


# Action states that end on their own: the page waits for them as it waits for an investigation.
_MOVING = ("running", "verifying")


def _pending(inv_rows: list[Any], action_statuses: list[str]) -> str | None:
    for row in inv_rows:
        if row.status in ("queued", "running"):
            return f"an investigation is {row.status}"
    moving = [st for st in action_statuses if st in _MOVING]
    return f"{len(moving)} action(s) {moving[0]}" if moving else None


def pending_state(runtime: Runtime, incident_id: str) -> str | None:
    """What is still under way for the incident (an investigation, a running action), else None."""
    with runtime.store.read() as s:
        inv_rows = investigations.investigations_of(s, incident_id)
        statuses = [r.status.value for r in incident_requests(s, incident_id)]
        return _pending(inv_rows, statuses)


def _timeline(alerts: list[Any], invs: list[Any], report: dict[str, Any] | None) -> list[dict[str, str]]:
    events: list[tuple[str, str, str, str]] = []
    for a in alerts:
        events.append((a.starts_at.isoformat(), "alert started", a.name, ""))
        events.append((a.received_at.isoformat(), "alert received", f"{a.name} ({a.status})", "alertmanager"))
        if a.resolved_at is not None:
            events.append((a.resolved_at.isoformat(), "alert resolved", a.name, "alertmanager"))
    for inv in invs:
        who = inv.requested_by or inv.trigger
        events.append((inv.created_at.isoformat(), "investigation queued", inv.id, who))
        if inv.finished_at is not None:
            what = f"{inv.id}" + (f": top cause {inv.top_service}" if inv.top_service else "")
            events.append(
                (inv.finished_at.isoformat(), f"investigation {inv.status}", what, inv.worker or "")
            )
    if report:
        for rc in report["root_causes"][:1]:
            for e in rc["evidence"]:
                if e.get("onset"):
                    events.append((e["onset"], "onset", f"{rc['service']}: {e['summary']}", ""))
        for a in report["actions"]:
            for key, label in (
                ("decided_at", "decided"),
                ("started_at", "started"),
                ("finished_at", "finished"),
            ):
                if a.get(key):
                    events.append(
                        (a[key], f"action {label}", f"{a['id']} on {a['target']}", a.get("decided_by") or "")
                    )
    events.sort(key=lambda e: e[0])
    return [
        {"at": at.replace("T", " ")[:19], "event": ev, "detail": d, "actor": who} for at, ev, d, who in events
    ]


def build(runtime: Runtime, incident_id: str, user: str) -> dict[str, Any]:
    """The incident page's context; raises ``NotFoundError`` for an unknown incident."""
    from opsagent.api.routes.actions import incident_audit

    with runtime.store.read() as s:
        row = incident_store.get_incident_row(s, incident_id)
        alert_rows = incident_store.alerts_of(s, incident_id)
        # Which firing of its alert group this is (a new incident, or episode N of a reopened one),
        # and why: the same words as the report's first note.
        episode_note = incident_store.current_episode_note(row, alert_rows)
        inv_rows = investigations.investigations_of(s, incident_id)
        inv = investigations.latest_result(s, incident_id)
        requests = incident_requests(s, incident_id)
        audit = incident_audit(s, incident_id)
        conv = s.scalar(
            select(ConversationRow)
            .where(ConversationRow.incident_id == incident_id, ConversationRow.user_name == user)
            .order_by(ConversationRow.updated_at.desc())
            .limit(1)
        )
        chat = (
            [{"role": m.role, "content": m.content} for m in conversations.messages_of(s, conv.id)]
            if conv is not None
            else []
        )
        conversation_id = conv.id if conv is not None else None
        outputs = action_outputs(s, incident_id)
        # The rows are read after the session ends: keep what was loaded (a rollback would expire it).
        s.expunge_all()
    settings = runtime.settings
    from opsagent.store.actions import SqlKillSwitch

    switch = SqlKillSwitch(runtime.store).state()
    kill_switch: str | None = None
    if settings.autonomy.kill_switch:
        kill_switch = "configuration (OPSAGENT_AUTONOMY__KILL_SWITCH)"
    elif switch.on:
        kill_switch = (switch.actor or "someone") + (f": {switch.reason}" if switch.reason else "")
    report = (
        to_json(inv, requests, dashboard_url=settings.console.dashboard_url, outputs=outputs) if inv else None
    )
    charts: list[list[Markup]] = []
    if inv is not None:
        split = inv.incident.alert_time.timestamp() if inv.incident.alert_time else None
        for rc in inv.findings.root_causes[:CHARTED_CAUSES]:
            charts.append(cause_charts(inv.series, rc.service, rc.evidence, split=split)[:CHARTS_PER_CAUSE])
    runbook = None
    others: list[dict[str, Any]] = []
    if inv is not None and inv.runbooks:
        best = inv.runbooks[0]
        runbook = _runbook({"id": best.id, "title": best.title, "score": best.score}, best.path)
        others = [{"id": b.id} for b in inv.runbooks[1:4]]
    alerts = [
        {
            "name": a.name,
            "status": a.status,
            "severity": a.labels.get("severity"),
            "starts_at": f"{a.starts_at:%Y-%m-%d %H:%M:%S}",
            "labels": dict(a.labels),
            "summary": a.annotations.get("summary"),
            "description": a.annotations.get("description"),
            "links": alert_links(a.labels, a.annotations, a.generator_url),
        }
        for a in alert_rows
    ]
    links = report["links"] if report else []
    return {
        "inc": {
            "id": row.id,
            "title": row.title,
            "status": row.status,
            "service": row.service,
            "namespace": row.namespace,
            "question": row.question,
            "created": f"{row.created_at:%Y-%m-%d %H:%M:%S}",
            "window": f"{row.window_start:%Y-%m-%d %H:%M} – {row.window_end:%H:%M} UTC",
            "episode": row.episode,
            "episode_note": episode_note,
            "follows": row.follows,
        },
        "r": report,
        "alerts": alerts,
        "charts": charts,
        "runbook": runbook,
        "others": others,
        "actions": report["actions"] if report else [],
        "links": [x for x in links if x["text"] != "report"],
        "timeline": _timeline(alert_rows, inv_rows, report),
        "audit": [
            {"at": f"{e.at:%Y-%m-%d %H:%M:%S}", "actor": e.actor, "event": e.event, "detail": e.detail}
            for e in audit
        ],
        "chat": chat,
        "kill_switch": kill_switch,
        # The newest investigation, when it failed: what went wrong is worth more than "none yet".
        "failed": (
            f"{inv_rows[0].id}: {inv_rows[0].error or 'no reason recorded'}"
            if inv_rows and inv_rows[0].status == "failed"  # newest first
            else None
        ),
        "conversation_id": conversation_id,
        "pending": _pending(inv_rows, [r.status.value for r in requests]),
    }


def markdown(runtime: Runtime, incident_id: str) -> str:
    from opsagent.api.routes.actions import audit_markdown

    with runtime.store.read() as s:
        inv = investigations.require_result(s, incident_id)
        requests = incident_requests(s, incident_id)
        return to_markdown(
            inv, requests, dashboard_url=runtime.settings.console.dashboard_url
        ) + audit_markdown(s, incident_id)


def request_investigation(runtime: Runtime, incident_id: str, user: str) -> str:
    with runtime.store.session() as s:
        inv_id, created = investigations.request_investigation(
            s, incident_id, requested_by=user, max_pending=runtime.settings.queue_max_pending
        )
    if created:
        runtime.queue.submit([inv_id])
        return f"Investigation {inv_id} queued."
    return f"Investigation {inv_id} is already under way."


def decide(
    request: Request,
    runtime: Runtime,
    incident_id: str,
    request_id: str,
    verb: str,
    user: str,
    reason: str,
    params: dict[str, str],
) -> str:
    """Approve (and run) or reject one of the incident's pending actions, as the API does."""
    from opsagent.api.routes.actions import action_runner
    from opsagent.autonomy.approvals import Approvals

    runner = action_runner(request, runtime)
    req = runner.store.get(request_id)
    if req.incident_id != incident_id:
        return f"Action request {request_id} belongs to another incident."
    try:
        if verb == "reject":
            Approvals(runner.store, runner.audit).reject(request_id, user, reason)
            return f"Rejected {req.action.action_id} on {req.action.target.service}."
        typed: dict[str, Any] = {k: _typed(v) for k, v in params.items()}
        Approvals(runner.store, runner.audit, catalog=runner.catalog).approve(
            request_id, user, reason, params=typed or None
        )
        done = runner.run_approved(request_id, user)
    except OpsAgentError as exc:
        return f"Not done: {exc}"
    from opsagent.report import status_label

    return f"Approved {req.action.action_id} on {req.action.target.service}: {status_label(done)}."


def _typed(value: str) -> Any:
    """A form value as the action's schema expects it: integers and numbers are not strings."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value

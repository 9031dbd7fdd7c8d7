"""``opsagent approvals list|approve|reject|audit`` and ``opsagent killswitch on|off|status``.

They work on the same database as the service, so an approval given here is the one the API shows,
and the kill switch set here stops the workers' automatic actions too.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import JsonValue

from opsagent.commands.common import console, fail, load_settings
from opsagent.config import Settings
from opsagent.errors import OpsAgentError

if TYPE_CHECKING:
    from opsagent.autonomy.catalog import ActionCatalog
    from opsagent.store import Store

approvals_app = typer.Typer(no_args_is_help=True, help="Actions waiting for a person, and the audit log.")
killswitch_app = typer.Typer(
    no_args_is_help=True, help="Drop every service to L1 at once (no automatic changes anywhere)."
)

ActorOption = Annotated[str | None, typer.Option("--actor", help="who you are (default: your login name)")]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="why; recorded in the audit log")]


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


def _store(settings: Settings) -> Store:
    from opsagent.store import Store

    store = Store(settings)
    store.migrate()
    return store


@approvals_app.command("list")
def approvals_list(
    status: Annotated[
        str, typer.Option(help="pending | approved | rejected | expired | all | ...")
    ] = "pending",
    incident: Annotated[str | None, typer.Option(help="only this incident")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Action requests, pending ones by default."""
    from opsagent.autonomy.approvals import ActionStatus, Approvals
    from opsagent.store.actions import SqlActionStore, SqlAuditLog

    settings = load_settings()
    try:
        wanted = None if status == "all" else ActionStatus(status)
    except ValueError:
        fail(
            f"unknown status {status!r} (expected all or one of: {', '.join(s.value for s in ActionStatus)})"
        )
    try:
        store = _store(settings)
        try:
            actions = SqlActionStore(store)
            Approvals(actions, SqlAuditLog(store)).expire_due()
            requests = actions.find(status=wanted, incident_id=incident)
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in requests], indent=2) + "\n")
        return
    if not requests:
        console.print(f"no {status} action requests")
        return
    for r in requests:
        a = r.action
        expires = f" expires {r.expires_at:%Y-%m-%d %H:%M}Z" if r.expires_at else ""
        console.print(
            f"[bold]{r.id}[/]  {r.status.value:<12} {a.action_id} ({a.risk.value}) on "
            f"{a.target.namespace or '-'}/{a.target.service}  incident {r.incident_id}{expires}\n"
            f"    params {json.dumps(a.params)}\n    why: {r.reason}",
            highlight=False,
        )


def _params(pairs: list[str]) -> dict[str, JsonValue]:
    """``--param idle_seconds=600`` → {"idle_seconds": 600}: JSON values where they parse, else strings."""
    out: dict[str, JsonValue] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--param {pair!r}: expected name=value")
        try:
            value: JsonValue = json.loads(raw)
        except ValueError:
            value = raw
        out[name.strip()] = value
    return out


def _decide(
    request_id: str, actor: str | None, reason: str, approve: bool, params: list[str] | None = None
) -> None:
    from opsagent.autonomy.approvals import Approvals
    from opsagent.store.actions import build_action_runner

    settings = load_settings()
    who = _actor(actor)
    try:
        store = _store(settings)
        try:
            runner = build_action_runner(settings, store, _catalog(settings))
            approvals = Approvals(runner.store, runner.audit, catalog=runner.catalog)
            if not approve:
                req = approvals.reject(request_id, who, reason)
                console.print(f"{req.id}: rejected by {who}")
                return
            approvals.approve(request_id, who, reason, params=_params(params or []) or None)
            # Approval is consent; the runner checks the policy again before it runs anything.
            req = runner.run_approved(request_id, who)
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    console.print(
        f"{req.id}: {req.status.value}" + (f" — {req.result}" if req.result else ""), highlight=False
    )
    if req.status.value in ("blocked", "failed"):
        raise typer.Exit(1)


def _catalog(settings: Settings) -> ActionCatalog:
    from opsagent.autonomy.catalog import ActionCatalog
    from opsagent.evidence.runbooks import load_runbooks

    # The catalogue comes from the runbook files themselves; no embedding is needed to approve.
    return ActionCatalog.from_runbooks(load_runbooks(settings.runbooks_dir))


@approvals_app.command("approve")
def approvals_approve(
    request_id: Annotated[str, typer.Argument(help="the action request id (see `approvals list`)")],
    actor: ActorOption = None,
    reason: ReasonOption = "",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="name=value for a parameter the proposal lacks (see `approvals list`)"
        ),
    ] = None,
) -> None:
    """Approve a pending action and run it, if the policy still allows it now."""
    _decide(request_id, actor, reason, approve=True, params=param)


@approvals_app.command("reject")
def approvals_reject(
    request_id: Annotated[str, typer.Argument(help="the action request id")],
    actor: ActorOption = None,
    reason: ReasonOption = "",
) -> None:
    """Reject a pending action; it will never run."""
    _decide(request_id, actor, reason, approve=False)


@approvals_app.command("audit")
def approvals_audit(
    incident: Annotated[str | None, typer.Option(help="only this incident")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The latest audit-log entries (decisions, approvals, runs, verifications, kill switch)."""
    from opsagent.autonomy.audit import verify_chain
    from opsagent.store.actions import SqlAuditLog

    settings = load_settings()
    try:
        store = _store(settings)
        try:
            log = SqlAuditLog(store)
            entries = log.entries(incident_id=incident, limit=limit)
            intact = verify_chain(log.entries()) if incident is None else None
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    for e in entries:
        what = f"{e.action_id} on {e.service}" if e.action_id else ""
        console.print(
            f"{e.seq:>6} {e.at:%Y-%m-%d %H:%M:%S}Z {e.kind:<18} {e.outcome or '':<14} {e.actor:<12} "
            f"{e.level or '':<3} {what}  {e.reason}",
            highlight=False,
        )
    if intact is False:
        fail("the audit log's hash chain is broken: entries were changed or removed", code=3)


def _switch(on: bool, actor: str | None, reason: str) -> None:
    from opsagent.autonomy.killswitch import switch
    from opsagent.store.actions import SqlAuditLog, SqlKillSwitch

    settings = load_settings()
    try:
        store = _store(settings)
        try:
            state = switch(
                SqlKillSwitch(store), SqlAuditLog(store), on=on, actor=_actor(actor), reason=reason
            )
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    console.print(
        "kill switch ON: every service is at L1, no automatic changes"
        if state.on
        else "kill switch off: configured levels apply again"
    )


@killswitch_app.command("on")
def killswitch_on(actor: ActorOption = None, reason: ReasonOption = "") -> None:
    """Stop all automatic actions now, including those of incidents being handled."""
    _switch(True, actor, reason)


@killswitch_app.command("off")
def killswitch_off(actor: ActorOption = None, reason: ReasonOption = "") -> None:
    """Let the configured autonomy levels apply again."""
    _switch(False, actor, reason)


@killswitch_app.command("status")
def killswitch_status() -> None:
    """Whether the kill switch is on, who set it and why."""
    from opsagent.store.actions import SqlKillSwitch

    settings = load_settings()
    try:
        store = _store(settings)
        try:
            state = SqlKillSwitch(store).state()
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    static = " (also held on by configuration)" if settings.autonomy.kill_switch else ""
    if state.on:
        console.print(f"ON since {state.changed_at:%Y-%m-%d %H:%M}Z by {state.actor}: {state.reason}{static}")
    else:
        console.print("off" + static)


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")
    app.add_typer(killswitch_app, name="killswitch")

"""``opsagent approvals list|approve|reject|audit``, ``opsagent killswitch on|off|status`` and
``opsagent breaker status|reset``.

Every one of them acts through the service's API with your token (``commands.remote``): the service
checks your role (responder to approve, admin for the kill switch and the breaker) and writes your
token's owner to the audit log. There is no ``--actor``: who acted is who holds the token.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from pydantic import JsonValue

from opsagent.commands.common import console, fail
from opsagent.commands.remote import DEFAULT_URL, Api, ApiUrlOption, TokenOption

approvals_app = typer.Typer(no_args_is_help=True, help="Actions waiting for a person, and the audit log.")
killswitch_app = typer.Typer(
    no_args_is_help=True, help="Drop every service to L1 at once (no automatic changes anywhere)."
)
breaker_app = typer.Typer(
    no_args_is_help=True, help="The circuit breaker that failures open: see it, and reset it."
)

ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="why; recorded in the audit log")]
STATUSES = [
    "pending",
    "approved",
    "rejected",
    "expired",
    "not_proposed",
    "denied",
    "blocked",
    "dry_run",
    "running",
    "verifying",
    "succeeded",
    "failed",
    "rolled_back",
]


@approvals_app.command("list")
def approvals_list(
    url: ApiUrlOption = DEFAULT_URL,
    token: TokenOption = None,
    status: Annotated[
        str, typer.Option(help="pending | approved | rejected | expired | all | ...")
    ] = "pending",
    incident: Annotated[str | None, typer.Option(help="only this incident")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Action requests, pending ones by default."""
    if status != "all" and status not in STATUSES:
        fail(f"unknown status {status!r} (expected all or one of: {', '.join(STATUSES)})")
    params = {
        k: v for k, v in (("status", None if status == "all" else status), ("incident_id", incident)) if v
    }
    requests: list[dict[str, Any]] = Api(url, token).call("GET", "/actions", params=params)["items"]
    if as_json:
        sys.stdout.write(json.dumps(requests, indent=2) + "\n")
        return
    if not requests:
        console.print(f"no {status} action requests")
        return
    for r in requests:
        a = r["action"]
        target = (a.get("resolved") or {}) or {}
        where = "/".join(p for p in (target.get("kind"), target.get("namespace"), target.get("name")) if p)
        expires = f" expires {r['expires_at']}" if r.get("expires_at") else ""
        console.print(
            f"[bold]{r['id']}[/]  {r['status']:<12} {a['action_id']} ({a['risk']}) on "
            f"{where or a['target']['service']}  incident {r['incident_id']}{expires}\n"
            f"    params {json.dumps(a['params'])}\n    why: {r['reason']}",
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


@approvals_app.command("approve")
def approvals_approve(
    request_id: Annotated[str, typer.Argument(help="the action request id (see `approvals list`)")],
    url: ApiUrlOption = DEFAULT_URL,
    token: TokenOption = None,
    reason: ReasonOption = "",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="name=value for a parameter the proposal lacks (see `approvals list`)"
        ),
    ] = None,
) -> None:
    """Approve a pending action and run it, if the policy still allows it now."""
    body: dict[str, JsonValue] = {"reason": reason}
    if param:
        body["params"] = _params(param)
    req = Api(url, token).call("POST", f"/actions/{request_id}/approve", json=body)
    console.print(
        f"{req['id']}: {req['status']} (approved by {req['decided_by']})"
        + (f" — {req['result']}" if req.get("result") else ""),
        highlight=False,
    )
    if req["status"] in ("blocked", "failed"):
        raise typer.Exit(1)


@approvals_app.command("reject")
def approvals_reject(
    request_id: Annotated[str, typer.Argument(help="the action request id")],
    url: ApiUrlOption = DEFAULT_URL,
    token: TokenOption = None,
    reason: ReasonOption = "",
) -> None:
    """Reject a pending action; it will never run."""
    req = Api(url, token).call("POST", f"/actions/{request_id}/reject", json={"reason": reason})
    console.print(f"{req['id']}: rejected by {req['decided_by']}", highlight=False)


@approvals_app.command("audit")
def approvals_audit(
    url: ApiUrlOption = DEFAULT_URL,
    token: TokenOption = None,
    incident: Annotated[str | None, typer.Option(help="only this incident")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5_000)] = 50,
) -> None:
    """The latest audit-log entries, and whether the log's hash chain is intact."""
    api = Api(url, token)
    params: dict[str, Any] = {"limit": limit, **({"incident_id": incident} if incident else {})}
    entries: list[dict[str, Any]] = api.call("GET", "/audit", params=params)
    for e in entries:
        what = (
            f"{e['action_id']} on {e['detail'].get('target') or e['service']}" if e.get("action_id") else ""
        )
        console.print(
            f"{e['seq']:>6} {e['at'][:19]}Z {e['kind']:<18} {e.get('outcome') or '':<14} {e['actor']:<12} "
            f"{e.get('level') or '':<3} {what}  {e['reason']}",
            highlight=False,
        )
    integrity = api.call("GET", "/audit/verify")
    if not integrity["intact"]:
        fail("the audit log's hash chain is broken: entries were changed or removed", code=3)


def _switch(url: str, token: str | None, on: bool, reason: str) -> None:
    state = Api(url, token).call("PUT", "/killswitch", json={"on": on, "reason": reason})
    console.print(
        f"kill switch ON (by {state['actor']}): every service is at L1, no automatic changes"
        if state["on"]
        else f"kill switch off (by {state['actor']}): configured levels apply again",
        highlight=False,
    )


@killswitch_app.command("on")
def killswitch_on(
    url: ApiUrlOption = DEFAULT_URL, token: TokenOption = None, reason: ReasonOption = ""
) -> None:
    """Stop all automatic actions now, including those of incidents being handled (admin)."""
    _switch(url, token, True, reason)


@killswitch_app.command("off")
def killswitch_off(
    url: ApiUrlOption = DEFAULT_URL, token: TokenOption = None, reason: ReasonOption = ""
) -> None:
    """Let the configured autonomy levels apply again (admin)."""
    _switch(url, token, False, reason)


@killswitch_app.command("status")
def killswitch_status(url: ApiUrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Whether the kill switch is on, who set it and why."""
    state = Api(url, token).call("GET", "/killswitch")
    if state["on"]:
        console.print(f"ON since {state.get('changed_at') or '?'} by {state['actor']}: {state['reason']}")
    else:
        console.print("off")


def _print_breaker(state: dict[str, Any]) -> None:
    if state.get("open_globally"):
        console.print(f"OPEN everywhere: {state['open_globally']}", highlight=False)
    for incident, why in sorted(state.get("incidents", {}).items()):
        console.print(f"OPEN for incident {incident}: {why}", highlight=False)
    if not state.get("open_globally") and not state.get("incidents"):
        console.print("closed: automatic actions may run where the policy allows")


@breaker_app.command("status")
def breaker_status(url: ApiUrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Where failures have stopped automatic actions."""
    _print_breaker(Api(url, token).call("GET", "/breaker"))


@breaker_app.command("reset")
def breaker_reset(
    url: ApiUrlOption = DEFAULT_URL,
    token: TokenOption = None,
    incident: Annotated[str | None, typer.Option(help="only this incident (default: everywhere)")] = None,
    reason: ReasonOption = "",
) -> None:
    """Re-arm automatic actions after you have looked at the failures (admin)."""
    body: dict[str, JsonValue] = {"reason": reason, **({"incident_id": incident} if incident else {})}
    _print_breaker(Api(url, token).call("POST", "/breaker/reset", json=body))


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")
    app.add_typer(killswitch_app, name="killswitch")
    app.add_typer(breaker_app, name="breaker")

"""``opsagent ask "QUESTION" [--incident REF]``: a chat turn in the terminal, streamed.

``REF`` is, in this order: a recorded-incident folder; an incident held in the store (SQLite under
``OPSAGENT_DATA_DIR`` by default, or ``OPSAGENT_DATABASE_URL``), whose newest finished investigation
becomes the chat's context; a demo incident's folder name or id under examples/incidents.
The store is only read: nothing is written to it, and a missing SQLite file is not created.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from opsagent.chat.binding import Binding
from opsagent.commands.common import err_console, fail, load_settings
from opsagent.config import Settings
from opsagent.domain import Incident, Investigation
from opsagent.errors import NotFoundError, OpsAgentError

EXAMPLES = Path("examples/incidents")


def find_recording(ref: str) -> Path | None:
    """A recorded-incident folder by path, by folder name under examples/incidents, or by its id."""
    path = Path(ref)
    if (path / "incident.yaml").is_file():
        return path
    if (EXAMPLES / ref / "incident.yaml").is_file():
        return EXAMPLES / ref
    if EXAMPLES.is_dir():
        for spec in sorted(EXAMPLES.glob("*/incident.yaml")):
            for line in spec.read_text(encoding="utf-8").splitlines():
                if line.startswith("id:") and line.split(":", 1)[1].strip().strip("'\"") == ref:
                    return spec.parent
    return None


Stored = tuple[Incident, Investigation | None, list[tuple[str, str]]]


def from_store(settings: Settings, incident_id: str) -> Stored | None:
    """The stored incident, its newest finished investigation and the actions its audit log records
    as started; None when the store has no such incident (or there is no store yet). Read-only: a
    missing SQLite database is not created."""
    from opsagent.chat import executed_actions
    from opsagent.store import incidents, investigations
    from opsagent.store.actions import SqlAuditLog
    from opsagent.store.db import Store

    if settings.database_url is None and not (settings.data_dir / "opsagent.db").is_file():
        return None
    store = Store(settings)
    try:
        with store.read() as session:
            try:
                incident = incidents.load_incident(session, incident_id)
            except NotFoundError:
                return None
            latest = investigations.latest_result(session, incident_id)
        return incident, latest, executed_actions(SqlAuditLog(store).entries(incident_id=incident_id))
    finally:
        store.close()


def bound_incident(settings: Settings, question: str) -> Binding | None:
    """The open incident the question is about (chat.binding), read-only; None without a store."""
    from opsagent.chat.binding import incident_for_question
    from opsagent.store.db import Store

    if settings.database_url is None and not (settings.data_dir / "opsagent.db").is_file():
        return None
    store = Store(settings)
    try:
        with store.read() as session:
            return incident_for_question(session, question)
    finally:
        store.close()


def ask(
    question: Annotated[str, typer.Argument(help="what you want to know")],
    incident: Annotated[
        str | None,
        typer.Option(
            "--incident",
            help="a recorded incident folder, a stored incident's id, or a demo incident's name/id",
        ),
    ] = None,
    reasoner: Annotated[str | None, typer.Option(help="offline | llm (default: llm if configured)")] = None,
) -> None:
    """Ask about an incident (or about now, from the live sources); the answer streams as it comes."""
    settings = load_settings()
    from opsagent.chat import chat_turn
    from opsagent.factory import build_services
    from opsagent.pipeline import investigate

    try:
        investigation = None
        folder: Path | None = None
        stored: Stored | None = None
        executed: list[tuple[str, str]] = []
        if incident is not None:
            # An explicit folder first; then the store (what the service investigated); then the demos.
            if (Path(incident) / "incident.yaml").is_file():
                folder = Path(incident)
            else:
                stored = from_store(settings, incident)
                folder = None if stored is not None else find_recording(incident)
            if folder is None and stored is None:
                where = "OPSAGENT_DATABASE_URL" if settings.database_url else str(settings.data_dir)
                fail(
                    f"no incident {incident!r}: not a folder with incident.yaml, not in the store "
                    f"({where}), not a demo incident's name or id"
                )
        else:
            # A question about something already firing is about that incident (issue 21).
            bound = bound_incident(settings, question)
            if bound is not None:
                stored = from_store(settings, bound.incident_id)
                err_console.print(
                    f"[dim]about open incident {bound.incident_id} ({bound.title}; matched "
                    f"{', '.join(bound.matched)})[/]",
                    highlight=False,
                )
            else:
                err_console.print("[dim]no open incident matches: investigating now[/]", highlight=False)
        if folder is not None:
            from opsagent.evals.native import load_native
            from opsagent.evals.replay import replay_sources

            recording = load_native(folder)
            services = build_services(settings, replay_sources(recording), reasoner=reasoner)
            err_console.print(f"[dim]investigating {recording.incident.id}…[/]", highlight=False)
            investigation = investigate(recording.incident, services)
        else:
            services = build_services(settings, reasoner=reasoner)
        if stored is not None:
            found, investigation, executed = stored
            if investigation is None:
                # Stored but never investigated: investigate now from the live sources (not stored).
                err_console.print(f"[dim]investigating stored incident {found.id}…[/]", highlight=False)
                investigation = investigate(found, services)
            else:
                err_console.print(
                    f"[dim]stored investigation of {found.id} "
                    f"({investigation.finished_at:%Y-%m-%d %H:%M} UTC)[/]",
                    highlight=False,
                )
        for event in chat_turn(question, [], services, investigation=investigation, executed=executed):
            data = event.data
            if event.event == "text":
                sys.stdout.write(str(data.get("delta", "")))
                sys.stdout.flush()
            elif event.event == "tool_call":
                err_console.print(f"[dim]→ {data.get('name')}({data.get('args')})[/]", highlight=False)
            elif event.event == "evidence":
                err_console.print(
                    f"[dim]evidence: {data.get('metrics')} series, {data.get('log_lines')} log lines, "
                    f"{data.get('services')} services[/]",
                    highlight=False,
                )
            elif event.event == "error":
                err_console.print(f"[yellow]{data.get('message')}[/]", highlight=False)
            elif event.event == "done":
                sys.stdout.write("\n")
                tokens = ""
                if data.get("prompt_tokens") is not None:
                    tokens = f" · {data.get('prompt_tokens')}+{data.get('completion_tokens')} tokens"
                err_console.print(
                    f"[dim]reasoner {data.get('reasoner')}{tokens} · {data.get('seconds')}s[/]",
                    highlight=False,
                )
    except OpsAgentError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)

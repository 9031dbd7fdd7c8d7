"""``opsagent ask "QUESTION" [--incident PATH_OR_ID]``: a chat turn in the terminal, streamed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from opsagent.commands.common import err_console, fail, load_settings
from opsagent.errors import OpsAgentError

EXAMPLES = Path("examples/incidents")


def find_recording(ref: str) -> Path:
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
    fail(f"no recorded incident {ref!r} (give a folder with incident.yaml, or a demo incident's name or id)")


def ask(
    question: Annotated[str, typer.Argument(help="what you want to know")],
    incident: Annotated[
        str | None,
        typer.Option("--incident", help="a recorded incident folder, or a demo incident's name/id"),
    ] = None,
    reasoner: Annotated[str | None, typer.Option(help="offline | llm (default: llm if configured)")] = None,
) -> None:
    """Ask about an incident (or about now, from the live sources); the answer streams as it comes."""
    settings = load_settings()
    from opsagent.chat import chat_turn
    from opsagent.factory import build_reasoner, build_services, live_sources
    from opsagent.pipeline import investigate

    try:
        investigation = None
        if incident is not None:
            from opsagent.evals.native import load_native
            from opsagent.evals.replay import replay_sources

            recording = load_native(find_recording(incident))
            services = build_services(
                settings, replay_sources(recording), reasoner=build_reasoner(settings, reasoner)
            )
            err_console.print(f"[dim]investigating {recording.incident.id}…[/]", highlight=False)
            investigation = investigate(recording.incident, services)
        else:
            services = build_services(
                settings, live_sources(settings), reasoner=build_reasoner(settings, reasoner)
            )
        for event in chat_turn(question, [], services, investigation=investigation):
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

"""``opsagent demo`` and ``opsagent investigate``: run the pipeline on a recorded incident."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown

from opsagent.commands.common import FormatOption, check_format, console, err_console, fail, load_settings
from opsagent.config import Settings
from opsagent.domain import Investigation
from opsagent.errors import OpsAgentError

DEMO_INCIDENT = Path("examples/incidents/db-pool-exhaustion")


def print_investigation(inv: Investigation, fmt: str) -> None:
    from opsagent.report import to_json, to_markdown

    if fmt == "json":
        sys.stdout.write(json.dumps(to_json(inv), indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(inv))
    else:
        console.print(Markdown(to_markdown(inv)))


def investigate_recorded(path: Path, settings: Settings, reasoner_name: str | None = None) -> Investigation:
    from opsagent.evals.native import load_native
    from opsagent.evals.replay import replay_sources
    from opsagent.factory import build_reasoner, build_services
    from opsagent.pipeline import investigate

    recording = load_native(path)
    services = build_services(
        settings, replay_sources(recording), reasoner=build_reasoner(settings, reasoner_name)
    )
    return investigate(recording.incident, services)


def demo(
    path: Annotated[Path, typer.Argument(help="a recorded incident folder")] = DEMO_INCIDENT,
    fmt: FormatOption = "text",
) -> None:
    """Index the runbooks and investigate a bundled demo incident on embedded defaults."""
    settings = load_settings()
    check_format(fmt)
    try:
        from opsagent.factory import build_runbook_index

        report = build_runbook_index(settings).sync()
        err_console.print(
            f"runbooks indexed: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed"
        )
        print_investigation(investigate_recorded(path, settings), fmt)
    except OpsAgentError as exc:
        fail(str(exc))


def investigate_cmd(
    path: Annotated[Path, typer.Argument(help="a recorded incident folder (native format)")],
    fmt: FormatOption = "text",
    reasoner: Annotated[
        str | None, typer.Option(help="offline | baro | llm (default: llm if configured)")
    ] = None,
) -> None:
    """Investigate a recorded incident and print the report."""
    settings = load_settings()
    check_format(fmt)
    try:
        print_investigation(investigate_recorded(path, settings, reasoner), fmt)
    except OpsAgentError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command("investigate")(investigate_cmd)

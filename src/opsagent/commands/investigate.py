"""``opsagent demo`` and ``opsagent investigate``: run the pipeline on a recorded incident."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.markdown import Markdown

from opsagent.commands.common import FormatOption, check_format, console, err_console, fail, load_settings
from opsagent.config import Settings
from opsagent.domain import Investigation, TimeWindow
from opsagent.errors import InputError, OpsAgentError
from opsagent.intake import Timestamp

DEMO_INCIDENT = Path("examples/incidents/db-pool-exhaustion")


def print_investigation(inv: Investigation, fmt: str) -> None:
    from opsagent.report import to_json, to_markdown

    if fmt == "json":
        sys.stdout.write(json.dumps(to_json(inv), indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(inv))
    else:
        console.print(Markdown(to_markdown(inv)))


_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
_REFERENCE_EXAMPLE = "2026-11-19T08:00:00Z/2026-11-19T10:00:00Z"


def parse_reference(text: str) -> TimeWindow:
    """``START/END``, two RFC 3339 timestamps (offset required, as in Alertmanager payloads) → TimeWindow.

    Strict on purpose: a date without a time or a bare number would silently name another period.
    """
    parts = text.split("/")
    if len(parts) != 2:
        raise InputError(f"--reference {text!r}: expected START/END, e.g. {_REFERENCE_EXAMPLE}")
    moments = []
    for part in parts:
        try:
            moment = _TIMESTAMP.validate_python(part.strip())
        except ValidationError as exc:
            problem = (
                "is outside 1970-01-01..2262-04-11, the times metrics and logs can carry"
                if "must lie between" in exc.errors()[0]["msg"]
                else f"is not an RFC 3339 timestamp (e.g. {_REFERENCE_EXAMPLE})"
            )
            raise InputError(f"--reference: {part.strip()!r} {problem}") from None
        moments.append(moment.astimezone(UTC))
    start, end = moments
    if end <= start:
        raise InputError(f"--reference {text!r}: the end must be after the start")
    return TimeWindow(start=start, end=end)


def investigate_recorded(
    path: Path,
    settings: Settings,
    reasoner_name: str | None = None,
    reference: TimeWindow | None = None,
) -> Investigation:
    """Replay a native recording through the pipeline; ``reference`` replaces the recorded reference period."""
    from opsagent.evals.native import load_native
    from opsagent.evals.replay import replay_sources
    from opsagent.factory import build_services
    from opsagent.pipeline import investigate

    recording = load_native(path)
    services = build_services(settings, replay_sources(recording), reasoner=reasoner_name)
    incident = recording.incident
    if reference is not None:
        incident = incident.model_copy(update={"reference": reference})
    return investigate(incident, services)


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
    reference: Annotated[
        str | None,
        typer.Option(
            help="a period known to be normal, START/END in RFC 3339 (e.g. 2026-11-19T08:00:00Z/"
            "2026-11-19T10:00:00Z): its recorded logs and traces are the normal side of the comparison"
        ),
    ] = None,
) -> None:
    """Investigate a recorded incident and print the report."""
    settings = load_settings()
    check_format(fmt)
    try:
        window = parse_reference(reference) if reference is not None else None
        print_investigation(investigate_recorded(path, settings, reasoner, window), fmt)
    except OpsAgentError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command("investigate")(investigate_cmd)

"""The ``opsagent`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markdown import Markdown

from opsagent.config import Settings
from opsagent.errors import OpsAgentError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Incident-analysis agent for on-call engineers."
)
runbooks_app = typer.Typer(no_args_is_help=True, help="Index and search the runbook library.")
app.add_typer(runbooks_app, name="runbooks")

console = Console()
err_console = Console(stderr=True)

DEMO_INCIDENT = Path("examples/incidents/db-pool-exhaustion")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and a non-zero exit: what a person at 3 a.m. needs, no traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        fail(f"bad setting OPSAGENT_{where.upper().replace('.', '__')}: {first['msg']}")


def _print_investigation(inv: object, fmt: str) -> None:
    from opsagent.domain import Investigation
    from opsagent.report import to_json, to_markdown

    assert isinstance(inv, Investigation)
    if fmt == "json":
        sys.stdout.write(json.dumps(to_json(inv), indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(inv))
    else:
        console.print(Markdown(to_markdown(inv)))


def _investigate_recorded(path: Path, fmt: str, settings: Settings, reasoner_name: str | None = None) -> None:
    from opsagent.evals.native import load_native
    from opsagent.evals.replay import replay_sources
    from opsagent.factory import build_reasoner, build_services
    from opsagent.pipeline import investigate

    recording = load_native(path)
    services = build_services(
        settings, replay_sources(recording), reasoner=build_reasoner(settings, reasoner_name)
    )
    _print_investigation(investigate(recording.incident, services), fmt)


FormatOption = Annotated[str, typer.Option("--format", "-f", help="text | markdown | json")]


def _check_format(fmt: str) -> str:
    if fmt not in {"text", "markdown", "json"}:
        fail(f"unknown format {fmt!r} (expected text, markdown or json)")
    return fmt


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="a recorded incident folder")] = DEMO_INCIDENT,
    fmt: FormatOption = "text",
) -> None:
    """Index the runbooks and investigate a bundled demo incident on embedded defaults."""
    settings = load_settings()
    _check_format(fmt)
    try:
        from opsagent.factory import build_runbook_index

        report = build_runbook_index(settings).sync()
        err_console.print(
            f"runbooks indexed: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed"
        )
        _investigate_recorded(path, fmt, settings)
    except OpsAgentError as exc:
        fail(str(exc))


@app.command("investigate")
def investigate_cmd(
    path: Annotated[Path, typer.Argument(help="a recorded incident folder (native format)")],
    fmt: FormatOption = "text",
    reasoner: Annotated[
        str | None, typer.Option(help="offline | baro | llm (default: llm if configured)")
    ] = None,
) -> None:
    """Investigate a recorded incident and print the report."""
    settings = load_settings()
    _check_format(fmt)
    try:
        _investigate_recorded(path, fmt, settings, reasoner)
    except OpsAgentError as exc:
        fail(str(exc))


@runbooks_app.command("index")
def runbooks_index() -> None:
    """(Re-)index the runbook folder; only changed runbooks are embedded again."""
    settings = load_settings()
    try:
        from opsagent.factory import build_runbook_index

        report = build_runbook_index(settings).sync()
    except OpsAgentError as exc:
        fail(str(exc))
    console.print(
        f"{report.added} added, {report.updated} updated, {report.removed} removed, {report.unchanged} unchanged"
    )


@runbooks_app.command("search")
def runbooks_search(
    query: Annotated[str, typer.Argument(help="an alert name, labels or a question")],
    k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5,
) -> None:
    """Search the runbook library."""
    settings = load_settings()
    try:
        from opsagent.factory import build_runbook_index

        index = build_runbook_index(settings)
        index.sync()
        words = set(query.replace(",", " ").replace("=", " ").split())
        matches = index.search(query, alert_names=sorted(words), k=k)
    except OpsAgentError as exc:
        fail(str(exc))
    for m in matches:
        console.print(f"{m.score:6.3f}  [bold]{m.id}[/]  {m.title}  [dim]({m.reason})[/]", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

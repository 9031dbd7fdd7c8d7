"""``opsagent runbooks index|search``."""

from __future__ import annotations

from typing import Annotated

import typer

from opsagent.commands.common import console, fail, load_settings
from opsagent.errors import OpsAgentError

runbooks_app = typer.Typer(no_args_is_help=True, help="Index and search the runbook library.")


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


def register(app: typer.Typer) -> None:
    app.add_typer(runbooks_app, name="runbooks")

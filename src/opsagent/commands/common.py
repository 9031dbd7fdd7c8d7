"""Helpers shared by CLI commands: settings loading and the one-line error exit."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from opsagent.config import Settings

console = Console()
err_console = Console(stderr=True)

FormatOption = Annotated[str, typer.Option("--format", "-f", help="text | markdown | json")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and a non-zero exit: what a person at 3 a.m. needs, no traceback."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the environment and opsagent.yaml; a bad value exits with one line."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "__".join(str(p) for p in first["loc"]).upper()
        fail(f"bad setting OPSAGENT_{where}: {first['msg']}")


def check_format(fmt: str, allowed: tuple[str, ...] = ("text", "markdown", "json")) -> str:
    if fmt not in allowed:
        fail(f"unknown format {fmt!r} (expected one of: {', '.join(allowed)})")
    return fmt

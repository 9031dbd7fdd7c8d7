"""``opsagent users create|list|disable``: the first admin token, and tokens for the people who follow.

The service refuses every call without a token; ``users create NAME --role admin`` on the machine
that holds the database is how the first one is made (later ones can come from ``POST /v1/users``).
The token is printed once, alone on the last line, so a script can take it with ``tail -n 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from opsagent.commands.common import console, err_console, fail, load_settings
from opsagent.config import Settings
from opsagent.errors import OpsAgentError

users_app = typer.Typer(
    no_args_is_help=True, help="People who may use the API and the console, and their tokens."
)
ROLES = ("viewer", "responder", "admin")
_T = TypeVar("_T")


def _in_store(settings: Settings, work: Callable[[Session], _T]) -> _T:
    """Run ``work`` in one write session of the configured store (migrated first); errors exit with one line."""
    from opsagent.store import Store

    try:
        store = Store(settings)
        try:
            store.migrate()
            with store.session() as s:
                return work(s)
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="the user's name (shown in the audit log)")],
    role: Annotated[str, typer.Option("--role", help="viewer | responder | admin")] = "viewer",
) -> None:
    """Create a user and print its first API token (shown once; only its hash is stored)."""
    from opsagent.store.users import create_user

    if role not in ROLES:
        fail(f"unknown role {role!r} (expected one of: {', '.join(ROLES)})")
    if not name.strip() or len(name) > 255:
        fail("a user name is 1 to 255 characters")
    settings = load_settings()
    token = _in_store(settings, lambda s: create_user(s, name, role))
    err_console.print(
        f"created {name} ({role}) in {settings.effective_database_url.split('@')[-1]}; "
        "the token below is shown only now: sign in to the console with it, or send it as "
        "`Authorization: Bearer <token>`"
    )
    # Alone on the last line of stdout: `TOKEN=$(opsagent users create ... | tail -n 1)`.
    print(token)


@users_app.command("list")
def list_cmd() -> None:
    """Users issued through the CLI or the API (tokens from OPSAGENT_API_TOKENS are not listed)."""
    from opsagent.store.users import list_users

    rows = _in_store(
        load_settings(), lambda s: [(u.name, u.role, u.disabled, u.created_at) for u in list_users(s)]
    )
    for name, role, disabled, created in rows:
        state = "disabled" if disabled else "active"
        console.print(f"{name}\t{role}\t{state}\t{created:%Y-%m-%d %H:%M}", highlight=False)


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="the user to disable")]) -> None:
    """Disable a user and revoke every token it has (its console sessions end too)."""
    from opsagent.store.users import disable_user

    _in_store(load_settings(), lambda s: disable_user(s, name))
    console.print(f"{name} disabled; its tokens are revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")

"""``opsagent users create|list|disable``: the first admin token, and tokens for the people who follow.

The service refuses every call without a token; ``users create NAME --role admin`` on the machine
that holds the database is how the first one is made (later ones can come from ``POST /v1/users``).
The token is printed once, alone on the last line, so a script can take it with ``tail -n 1``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from opsagent.commands.common import console, err_console, fail, load_settings
from opsagent.errors import OpsAgentError

users_app = typer.Typer(
    no_args_is_help=True, help="People who may use the API and the console, and their tokens."
)
ROLES = ("viewer", "responder", "admin")


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="the user's name (shown in the audit log)")],
    role: Annotated[str, typer.Option("--role", help="viewer | responder | admin")] = "viewer",
) -> None:
    """Create a user and print its first API token (shown once; only its hash is stored)."""
    if role not in ROLES:
        fail(f"unknown role {role!r} (expected one of: {', '.join(ROLES)})")
    if not name.strip() or len(name) > 255:
        fail("a user name is 1 to 255 characters")
    settings = load_settings()
    try:
        from opsagent.store import Store
        from opsagent.store.users import create_user

        store = Store(settings)
        try:
            store.migrate()
            with store.session() as s:
                token = create_user(s, name, role)
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
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
    settings = load_settings()
    try:
        from opsagent.store import Store
        from opsagent.store.users import list_users

        store = Store(settings)
        try:
            store.migrate()
            with store.read() as s:
                rows = [(u.name, u.role, u.disabled, u.created_at) for u in list_users(s)]
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    for name, role, disabled, created in rows:
        console.print(
            f"{name}\t{role}\t{'disabled' if disabled else 'active'}\t{created:%Y-%m-%d %H:%M}",
            highlight=False,
        )


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="the user to disable")]) -> None:
    """Disable a user and revoke every token it has (its console sessions end too)."""
    settings = load_settings()
    try:
        from opsagent.store import Store
        from opsagent.store.users import disable_user

        store = Store(settings)
        try:
            store.migrate()
            with store.session() as s:
                disable_user(s, name)
        finally:
            store.close()
    except OpsAgentError as exc:
        fail(str(exc))
    console.print(f"{name} disabled; its tokens are revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")

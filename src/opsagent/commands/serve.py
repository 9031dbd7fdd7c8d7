"""``opsagent serve`` (the HTTP service) and ``opsagent worker`` (investigations from Redis)."""

from __future__ import annotations

from typing import Annotated

import typer

from opsagent.commands.common import err_console, fail, load_settings
from opsagent.errors import OpsAgentError


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the HTTP API: Alertmanager webhook, incidents, reports, chat, /healthz, /readyz, /metrics."""
    import uvicorn

    from opsagent.api import create_app

    settings = load_settings()
    if settings.webhook_token is None and not settings.api_tokens:
        err_console.print(
            "note: no OPSAGENT_WEBHOOK_TOKEN or OPSAGENT_API_TOKENS: only users from `opsagent users create "
            "NAME --role admin` can sign in (http://HOST:PORT/) or call the API"
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err_console.print(f"web console: http://{shown}:{port}/ (sign in with an API token)", highlight=False)
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
    except OpsAgentError as exc:
        fail(str(exc))


def worker(
    burst: Annotated[bool, typer.Option(help="exit once the queue is empty")] = False,
    name: Annotated[str | None, typer.Option(help="worker name (default: host and pid)")] = None,
) -> None:
    """Run investigations queued in Redis (OPSAGENT_REDIS_URL); start as many as you like, anywhere."""
    settings = load_settings()
    if not settings.redis_url:
        fail(
            "opsagent worker needs OPSAGENT_REDIS_URL (without it, `opsagent serve` runs investigations itself)"
        )
    try:
        from opsagent.factory import build_services
        from opsagent.jobs import run_worker

        run_worker(settings, build_services(settings), burst=burst, name=name)
    except OpsAgentError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)

"""The CLI as an API client: commands that change what autonomy may do go through the service.

Approvals, the kill switch, the circuit breaker and the audit log are reached with an API token
(``--token`` / ``OPSAGENT_API_TOKEN``) at ``--api-url`` / ``OPSAGENT_API_URL``. The service checks the
token's role and records its owner as the actor: there is no way to name someone else from here.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from opsagent.commands.common import fail

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 120.0  # an approval runs the action (and, at L4/L5, its verification) before answering

ApiUrlOption = Annotated[
    str,
    typer.Option("--api-url", envvar="OPSAGENT_API_URL", help="the opsagent service (default: local)"),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="OPSAGENT_API_TOKEN",
        help="your API token (OPSAGENT_API_TOKEN); the audit log records its owner",
        show_default=False,
    ),
]


class Api:
    """One authenticated client for one command."""

    def __init__(self, url: str, token: str | None) -> None:
        if not token:
            fail(
                "this command needs an API token: set OPSAGENT_API_TOKEN or pass --token "
                "(an admin issues one with `opsagent users create`)"
            )
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": "opsagent-cli"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer; a refusal or an unreachable service exits with one line."""
        try:
            with httpx.Client(
                base_url=self._url,
                headers=self._headers,
                timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=5.0),
            ) as client:
                response = client.request(method, f"/v1{path}", **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the opsagent service at {self._url} ({type(exc).__name__})")
        if response.is_success:
            return response.json()
        try:
            body = response.json()
            detail = body.get("detail") if isinstance(body, dict) else None
        except ValueError:
            detail = None
        fail(f"{method} /v1{path}: HTTP {response.status_code}: {detail or response.reason_phrase}")

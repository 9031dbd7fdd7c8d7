"""Who may see a console page, and how a page is sent: the session read from its cookie, the role
and CSRF checks, the page response with its security headers, and the error pages for both refusals.

Every POST carries the session's CSRF token (a form field, or the ``X-CSRF-Token`` header for the
chat) and, when the browser sends one, a same-origin ``Origin``.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from opsagent.api.runtime import Runtime
from opsagent.api.ui.session import COOKIE, ConsoleSession, SessionCodec, secret_key, still_valid
from opsagent.config import ApiRole

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))

# Pages only load what this server serves; inline SVG charts need no script or style attributes.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SignInRequiredError(Exception):
    """Not signed in: the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class ConsoleRefusedError(Exception):
    """Signed in, but not allowed (role, CSRF, origin): a 403 page that says why."""

    def __init__(self, message: str, back: str = "/incidents") -> None:
        super().__init__(message)
        self.message = message
        self.back = back


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def codec(request: Request) -> SessionCodec:
    found: SessionCodec | None = getattr(request.app.state, "console_codec", None)
    if found is None:
        settings = runtime_of(request).settings
        found = SessionCodec(secret_key(settings), settings.console.session_hours)
        request.app.state.console_codec = found
    return found


def read_session(request: Request) -> ConsoleSession | None:
    """The signed-in session, if its cookie is valid and its token still grants a role (sync)."""
    session = codec(request).read(request.cookies.get(COOKIE))
    if session is None:
        return None
    runtime = runtime_of(request)
    with runtime.store.read() as db:
        principal = still_valid(runtime.settings, db, session)
    if principal is None:
        return None
    # The role may have changed since sign-in: the token's current role counts.
    if principal.role != session.role:
        return ConsoleSession(
            name=principal.name,
            role=principal.role,
            token_sha256=session.token_sha256,
            expires=session.expires,
            csrf=session.csrf,
        )
    return session


async def need(request: Request, role: ApiRole = "viewer") -> ConsoleSession:
    session = await run_in_threadpool(read_session, request)
    if session is None:
        raise SignInRequiredError(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if not session.may(role):
        raise ConsoleRefusedError(f"this needs the {role} role; {session.name} is {session.role}")
    return session


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every client on same-origin requests; the CSRF token still is
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def form_of(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


async def need_post(request: Request, role: ApiRole, token: str | None) -> ConsoleSession:
    """A signed-in POST with the right role, the session's CSRF token and a same-origin Origin."""
    session = await need(request, role)
    if not same_origin(request):
        raise ConsoleRefusedError("refused: the request came from another site")
    if not token or not hmac.compare_digest(token, session.csrf):
        raise ConsoleRefusedError("refused: the form is stale or was not sent by this console (CSRF token)")
    return session


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def install_errors(app: FastAPI) -> None:
    """Sign-in redirects and refusal pages for the console's routes."""

    async def redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequiredError)
        return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRefusedError)
        session = await run_in_threadpool(read_session, request)
        return page(
            request,
            "message.html",
            {"session": session, "heading": "Refused", "message": exc.message, "back": exc.back},
            403,
        )

    app.add_exception_handler(SignInRequiredError, redirect)
    app.add_exception_handler(ConsoleRefusedError, refused)

"""The console's pages: sign-in, incidents, one incident, evaluation reports, the API description.

Pages are rendered on the server from the same store and report functions the API uses; the one
script (``static/console.js``) only refreshes the incident list, waits for a running investigation
and streams chat answers. Every POST carries the session's CSRF token (a form field, or the
``X-CSRF-Token`` header for the chat) and, when the browser sends one, a same-origin ``Origin``.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from opsagent.api.deps import authenticate
from opsagent.api.runtime import Runtime
from opsagent.api.ui import incident_page
from opsagent.api.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    ConsoleSession,
    SessionCodec,
    secret_key,
    still_valid,
)
from opsagent.config import ApiRole
from opsagent.errors import NotFoundError, OpsAgentError
from opsagent.store import incidents as incident_store
from opsagent.store.models import IncidentRow, InvestigationRow

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
router = APIRouter(include_in_schema=False)

# Pages only load what this server serves; inline SVG charts need no script or style attributes.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SINCE_CHOICES = [("", "any time"), ("1h", "last hour"), ("24h", "last 24 h"), ("7d", "last 7 days")]
_SINCE = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
_REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.json$")


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


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def codec(request: Request) -> SessionCodec:
    found: SessionCodec | None = getattr(request.app.state, "console_codec", None)
    if found is None:
        settings = _runtime(request).settings
        found = SessionCodec(secret_key(settings), settings.console.session_hours)
        request.app.state.console_codec = found
    return found


def _read_session(request: Request) -> ConsoleSession | None:
    session = codec(request).read(request.cookies.get(COOKIE))
    if session is None:
        return None
    runtime = _runtime(request)
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
    session = await run_in_threadpool(_read_session, request)
    if session is None:
        raise SignInRequiredError(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if not session.may(role):
        raise ConsoleRefusedError(f"this needs the {role} role; {session.name} is {session.role}")
    return session


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every client on same-origin requests; the CSRF token still is
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


async def need_post(request: Request, role: ApiRole, token: str | None) -> ConsoleSession:
    """A signed-in POST with the right role, the session's CSRF token and a same-origin Origin."""
    session = await need(request, role)
    if not _same_origin(request):
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


def _safe_next(value: str | None) -> str:
    """Only a path of this site: an open redirect would hand the session to someone else's page."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/incidents"
    return value


# ---- sign-in -------------------------------------------------------------------------------


@router.get("/")
async def root(request: Request) -> Response:
    session = await run_in_threadpool(_read_session, request)
    return RedirectResponse("/incidents" if session else "/login?next=/incidents", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str = "/incidents") -> Response:
    nonce = codec(request).login_nonce()
    response = page(request, "login.html", {"session": None, "nonce": nonce, "next": _safe_next(next)})
    _set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=1800)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    c = codec(request)
    target = _safe_next(form.get("next"))
    if not _same_origin(request) or not c.check_login_nonce(
        request.cookies.get(LOGIN_COOKIE), form.get("nonce")
    ):
        return await _login_again(request, target, "The sign-in form expired; try again.", 400)
    token = form.get("token", "").strip()
    principal = await run_in_threadpool(authenticate, _runtime(request), token) if token else None
    if principal is None:
        return await _login_again(request, target, "Unknown or revoked token.", 401)
    cookie, _ = c.issue(principal, token)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, COOKIE, cookie, max_age=c.max_age)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def _login_again(request: Request, target: str, error: str, status: int) -> Response:
    nonce = codec(request).login_nonce()
    response = page(
        request, "login.html", {"session": None, "nonce": nonce, "next": target, "error": error}, status
    )
    _set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=1800)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_runtime(request).settings.console.secure_cookies,
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    await need_post(request, "viewer", form.get("csrf"))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---- incidents -------------------------------------------------------------------------------


@dataclass
class _Filters:
    status: str | None
    service: str | None
    since: str

    @classmethod
    def of(cls, request: Request) -> _Filters:
        q = request.query_params
        status = q.get("status") if q.get("status") in ("open", "resolved") else None
        service = (q.get("service") or "").strip()[:255] or None
        since = q.get("since", "") if q.get("since", "") in _SINCE else ""
        return cls(status, service, since)

    def query(self) -> str:
        return urlencode({k: v for k, v in vars(self).items() if v})


def _incident_rows(
    runtime: Runtime, f: _Filters, limit: int = 100
) -> tuple[list[dict[str, Any]], int, list[str]]:
    since = datetime.now(UTC) - _SINCE[f.since] if f.since else None
    with runtime.store.read() as s:
        rows, total = incident_store.list_incidents(
            s, status=f.status, service=f.service, since=since, limit=limit
        )
        latest: dict[str, InvestigationRow] = {}
        if rows:
            for found in s.scalars(
                select(InvestigationRow)
                .where(InvestigationRow.incident_id.in_([r.id for r in rows]))
                .order_by(InvestigationRow.created_at)
            ):
                latest[found.incident_id] = found
        services = sorted({x for x in s.scalars(select(IncidentRow.service).distinct().limit(500)) if x})
        # The rows are read after the session ends: keep what was loaded (a rollback would expire it).
        s.expunge_all()
    out = []
    for r in rows:
        inv = latest.get(r.id)
        out.append(
            {
                "id": r.id,
                "title": r.title,
                "status": r.status,
                "service": r.service,
                "namespace": r.namespace,
                "created": f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                "top_service": inv.top_service if inv else None,
                "top_fault": inv.top_fault if inv else None,
                "confidence": inv.confidence if inv else None,
                "investigation": inv.status if inv else None,
            }
        )
    return out, total, services


@router.get("/incidents")
async def incidents_page(request: Request) -> Response:
    session = await need(request)
    f = _Filters.of(request)
    rows, total, services = await run_in_threadpool(_incident_rows, _runtime(request), f)
    return page(
        request,
        "incidents.html",
        {
            "session": session,
            "rows": rows,
            "total": total,
            "services": services,
            "f": f,
            "query": f.query(),
            "since_choices": SINCE_CHOICES,
        },
    )


@router.get("/incidents/rows")
async def incident_rows(request: Request) -> Response:
    """The list's rows alone, for the page's live refresh; 401 (not a redirect) once signed out."""
    session = await run_in_threadpool(_read_session, request)
    if session is None:
        return PlainTextResponse("signed out", status_code=401)
    rows, total, _ = await run_in_threadpool(_incident_rows, _runtime(request), _Filters.of(request))
    response = page(request, "_incident_rows.html", {"rows": rows})
    response.headers["X-Total-Count"] = str(total)
    return response


@router.get("/incidents/{incident_id}")
async def incident_view(request: Request, incident_id: str) -> Response:
    session = await need(request)
    runtime = _runtime(request)
    try:
        context = await run_in_threadpool(incident_page.build, runtime, incident_id[:64], session.name)
    except NotFoundError:
        return page(
            request,
            "message.html",
            {
                "session": session,
                "heading": "Not found",
                "message": f"There is no incident {incident_id[:64]!r}.",
            },
            404,
        )
    flash = request.query_params.get("done")
    return page(
        request,
        "incident.html",
        {"session": session, **context, "flash": flash[:300] if flash else None},
    )


@router.get("/incidents/{incident_id}/state")
async def incident_state(request: Request, incident_id: str) -> Response:
    await need(request)
    pending = await run_in_threadpool(incident_page.pending_state, _runtime(request), incident_id[:64])
    return Response(json.dumps({"pending": pending}), media_type="application/json")


@router.get("/incidents/{incident_id}/report.md")
async def incident_markdown(request: Request, incident_id: str) -> Response:
    await need(request)
    text = await run_in_threadpool(incident_page.markdown, _runtime(request), incident_id[:64])
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


def _back(incident_id: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"/incidents/{quote(incident_id)}?done={quote(message)}", status_code=303)


@router.post("/incidents/{incident_id}/investigate")
async def investigate_now(request: Request, incident_id: str) -> Response:
    form = await _form(request)
    session = await need_post(request, "responder", form.get("csrf"))
    message = await run_in_threadpool(
        incident_page.request_investigation, _runtime(request), incident_id[:64], session.name
    )
    return _back(incident_id, message)


@router.post("/incidents/{incident_id}/actions/{request_id}/{verb}")
async def decide(request: Request, incident_id: str, request_id: str, verb: str) -> Response:
    if verb not in ("approve", "reject"):
        raise ConsoleRefusedError(f"unknown decision {verb!r}", back=f"/incidents/{incident_id}")
    form = await _form(request)
    session = await need_post(request, "responder", form.get("csrf"))
    params = {k.removeprefix("param."): v for k, v in form.items() if k.startswith("param.") and v}
    message = await run_in_threadpool(
        incident_page.decide,
        request,
        _runtime(request),
        incident_id[:64],
        request_id[:32],
        verb,
        session.name,
        form.get("reason", "")[:2000],
        params,
    )
    return _back(incident_id, message)


@router.post("/incidents/{incident_id}/chat")
async def incident_chat(request: Request, incident_id: str) -> Response:
    """One chat turn about the incident, streamed as the API's ``/v1/chat`` streams it."""
    from opsagent.api.routes.chat import chat
    from opsagent.api.schemas import ChatRequest

    session = await need_post(request, "responder", request.headers.get("x-csrf-token"))
    try:
        raw = json.loads(await request.body())
        body = ChatRequest(
            message=raw.get("message", ""),
            conversation_id=raw.get("conversation_id") or None,
            incident_id=incident_id[:64],
        )
    except (ValueError, ValidationError, AttributeError) as exc:
        return PlainTextResponse(f"bad chat request: {type(exc).__name__}", status_code=422)
    return await chat(body, _runtime(request), session.principal)


# ---- evaluation reports ------------------------------------------------------------------------


def _eval_rows(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[:200]:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            continue  # not an `opsagent eval` report
        ranks = [c.get("rank_of_truth") for c in doc["cases"] if isinstance(c, dict)]
        datasets = doc.get("datasets")
        out.append(
            {
                "name": path.name,
                "when": str(doc.get("generated_at") or "")[:16].replace("T", " "),
                "cases": len(ranks),
                "datasets": ", ".join(datasets) if isinstance(datasets, dict) else "",
                "reasoner": str(doc.get("reasoner") or ""),
                "ac1": _share(ranks, 1),
                "ac3": _share(ranks, 3),
            }
        )
    return out


def _share(ranks: list[Any], k: int) -> str:
    """AC@k over the report's cases: the share whose true cause ranked k-th or better."""
    if not ranks:
        return ""
    hits = sum(1 for r in ranks if isinstance(r, int) and r <= k)
    return f"{hits / len(ranks):.2f}"


@router.get("/evals")
async def evals_page(request: Request) -> Response:
    session = await need(request)
    folder = _runtime(request).settings.console.reports_dir
    rows = await run_in_threadpool(_eval_rows, folder) if folder.is_dir() else []
    return page(request, "evals.html", {"session": session, "reports": rows, "folder": str(folder)})


@router.get("/evals/{name}")
async def eval_report(request: Request, name: str) -> Response:
    await need(request)
    folder = _runtime(request).settings.console.reports_dir
    if not _REPORT_NAME.match(name) or not (folder / name).is_file():
        raise ConsoleRefusedError(f"no evaluation report named {name[:130]!r}", back="/evals")
    from opsagent.evals.html import render_html

    try:
        doc = json.loads((folder / name).read_text())
        html = await run_in_threadpool(render_html, doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConsoleRefusedError(
            f"{name} is not a readable evaluation report ({type(exc).__name__})", "/evals"
        ) from exc
    response = HTMLResponse(html)
    # The report is one self-contained page with its own inline styles and no script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- the API description, offline -----------------------------------------------------------------


@router.get("/docs")
async def api_docs(request: Request) -> Response:
    from opsagent.api.ui.apidocs import describe

    session = await run_in_threadpool(_read_session, request)
    return page(request, "docs.html", {"session": session, **describe(request.app.openapi())})


def install_errors(app: Any) -> None:
    """Sign-in redirects and refusal pages for the console's routes."""

    async def redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequiredError)
        return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRefusedError)
        session = await run_in_threadpool(_read_session, request)
        return page(
            request,
            "message.html",
            {"session": session, "heading": "Refused", "message": exc.message, "back": exc.back},
            403,
        )

    app.add_exception_handler(SignInRequiredError, redirect)
    app.add_exception_handler(ConsoleRefusedError, refused)


__all__ = ["OpsAgentError", "install_errors", "router"]

"""The sign-in pages: ``/`` (to the incidents or the sign-in form), ``/login`` and ``/logout``.

An API token is exchanged for a signed session cookie (``session.py``); the sign-in form carries a
nonce that must match its cookie, a guard against login CSRF.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsagent.api.deps import authenticate
from opsagent.api.ui.access import codec, form_of, need_post, page, read_session, runtime_of, same_origin
from opsagent.api.ui.session import COOKIE, LOGIN_COOKIE

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path of this site: an open redirect would hand the session to someone else's page."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/incidents"
    return value


@router.get("/")
async def root(request: Request) -> Response:
    session = await run_in_threadpool(read_session, request)
    return RedirectResponse("/incidents" if session else "/login?next=/incidents", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str = "/incidents") -> Response:
    nonce = codec(request).login_nonce()
    response = page(request, "login.html", {"session": None, "nonce": nonce, "next": _safe_next(next)})
    _set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=1800)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    c = codec(request)
    target = _safe_next(form.get("next"))
    if not same_origin(request) or not c.check_login_nonce(
        request.cookies.get(LOGIN_COOKIE), form.get("nonce")
    ):
        return await _login_again(request, target, "The sign-in form expired; try again.", 400)
    token = form.get("token", "").strip()
    principal = await run_in_threadpool(authenticate, runtime_of(request), token) if token else None
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
        secure=runtime_of(request).settings.console.secure_cookies,
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await form_of(request)
    await need_post(request, "viewer", form.get("csrf"))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response

"""Dependencies and their ``Annotated`` aliases (the full-stack FastAPI template's style).

Roles are ordered: viewer < responder < admin. Viewers read incidents and reports; responders also
chat and start investigations; admins also manage users and tokens.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from opsagent.api.runtime import Runtime
from opsagent.config import ApiRole, Settings
from opsagent.errors import AuthError, PermissionDeniedError
from opsagent.store import users

ROLE_RANK: dict[str, int] = {"viewer": 0, "responder": 1, "admin": 2}

bearer = HTTPBearer(auto_error=False, description="An API token (OPSAGENT_API_TOKENS or POST /v1/users)")
webhook_bearer = HTTPBearer(
    scheme_name="WebhookToken",
    auto_error=False,
    description="OPSAGENT_WEBHOOK_TOKEN (Alertmanager http_config.authorization), or a responder's API token",
)


class Principal(BaseModel):
    name: str
    role: ApiRole


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_db(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.store.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def get_read_db(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.store.read() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_db)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
WebhookCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(webhook_bearer)]


def authenticate(runtime: Runtime, token: str) -> Principal | None:
    """The caller a token belongs to: configured tokens first, then tokens issued through the API."""
    for configured in runtime.settings.api_tokens:
        if hmac.compare_digest(configured.token.get_secret_value().encode(), token.encode()):
            return Principal(name=configured.name, role=configured.role)
    with runtime.store.read() as s:
        user = users.user_for_token(s, token)
        if user is None or user.role not in ROLE_RANK:
            return None
        return Principal(name=user.name, role=user.role)


def get_current_user(runtime: RuntimeDep, credentials: Credentials) -> Principal:
    if credentials is None or not credentials.credentials:
        raise AuthError("missing bearer token (Authorization: Bearer <token>)")
    principal = authenticate(runtime, credentials.credentials)
    if principal is None:
        raise AuthError("unknown or revoked token")
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require(role: ApiRole) -> Callable[[Principal], Principal]:
    def check(user: CurrentUser) -> Principal:
        if ROLE_RANK[user.role] < ROLE_RANK[role]:
            raise PermissionDeniedError(f"this needs the {role} role; {user.name} is {user.role}")
        return user

    return check


ViewerUser = Annotated[Principal, Depends(require("viewer"))]
ResponderUser = Annotated[Principal, Depends(require("responder"))]
AdminUser = Annotated[Principal, Depends(require("admin"))]


async def webhook_caller(request: Request, credentials: WebhookCredentials) -> Principal:
    """Alertmanager (the webhook token) or a responder; checked without a thread hop on the hot path."""
    runtime: Runtime = request.app.state.runtime
    if credentials is None or not credentials.credentials:
        raise AuthError("missing bearer token (Authorization: Bearer <token>)")
    return await authorize_webhook(runtime, credentials.credentials)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (as ``HTTPBearer`` reads it), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authorize_webhook(runtime: Runtime, token: str | None) -> Principal:
    """Who may post alerts: the webhook token, or any responder's API token."""
    if not token:
        raise AuthError("missing bearer token (Authorization: Bearer <token>)")
    expected = runtime.settings.webhook_token
    if expected is not None and hmac.compare_digest(expected.get_secret_value().encode(), token.encode()):
        return Principal(name="alertmanager", role="responder")
    from starlette.concurrency import run_in_threadpool

    principal = await run_in_threadpool(authenticate, runtime, token)
    if principal is None:
        raise AuthError("unknown or revoked token")
    if ROLE_RANK[principal.role] < ROLE_RANK["responder"]:
        raise PermissionDeniedError(
            f"posting alerts needs the responder role; {principal.name} is {principal.role}"
        )
    return principal


WebhookCaller = Annotated[Principal, Depends(webhook_caller)]

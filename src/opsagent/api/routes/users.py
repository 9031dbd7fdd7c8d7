"""Users and their API tokens (admins), and who am I (anyone with a token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from opsagent.api.deps import AdminUser, CurrentUser, ReadSessionDep, SessionDep
from opsagent.api.http_errors import error_responses
from opsagent.api.schemas import Me, TokenIssued, UserCreate, UserOut
from opsagent.store import users

router = APIRouter(tags=["users"])
UserName = Annotated[str, Path(min_length=1, max_length=255)]
_ERRS = error_responses(401, 403, 404, 409, 422)


@router.get("/users/me", response_model=Me, summary="The caller's name and role", responses=_ERRS)
def me(user: CurrentUser) -> Me:
    return Me(name=user.name, role=user.role)


@router.get("/users", response_model=list[UserOut], summary="Users issued through the API", responses=_ERRS)
def list_users(session: ReadSessionDep, admin: AdminUser) -> list[UserOut]:
    return [
        UserOut(name=u.name, role=u.role, disabled=u.disabled, created_at=u.created_at)
        for u in users.list_users(session)
    ]


@router.post(
    "/users",
    status_code=201,
    response_model=TokenIssued,
    summary="Create a user and its first token",
    responses=_ERRS,
)
def create_user(body: UserCreate, session: SessionDep, admin: AdminUser) -> TokenIssued:
    token = users.create_user(session, body.name, body.role)
    return TokenIssued(name=body.name, role=body.role, token=token)


@router.post(
    "/users/{name}/tokens",
    status_code=201,
    response_model=TokenIssued,
    summary="Issue another token",
    responses=_ERRS,
)
def issue_token(name: UserName, session: SessionDep, admin: AdminUser) -> TokenIssued:
    user = users.get_user(session, name)
    return TokenIssued(name=user.name, role=user.role, token=users.issue_token(session, user.id))


@router.delete(
    "/users/{name}", status_code=204, summary="Disable a user and revoke its tokens", responses=_ERRS
)
def disable_user(name: UserName, session: SessionDep, admin: AdminUser) -> None:
    users.disable_user(session, name)

"""Users and their API tokens (only a token's SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opsagent.errors import ConflictError, NotFoundError
from opsagent.store.base import utcnow
from opsagent.store.models import TokenRow, UserRow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: str) -> str:
    """Create a user with one token; returns the token (only its hash is stored)."""
    if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
        raise ConflictError(f"user {name!r} already exists")
    user = UserRow(name=name, role=role, disabled=False)
    session.add(user)
    session.flush()
    return issue_token(session, user.id)


def issue_token(session: Session, user_id: int) -> str:
    token = "oa_" + secrets.token_urlsafe(32)
    session.add(TokenRow(user_id=user_id, token_sha256=hash_token(token)))
    return token


def get_user(session: Session, name: str) -> UserRow:
    user = session.scalar(select(UserRow).where(UserRow.name == name))
    if user is None:
        raise NotFoundError(f"user {name!r} does not exist")
    return user


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.name)))


def disable_user(session: Session, name: str) -> None:
    user = get_user(session, name)
    user.disabled = True
    session.execute(
        update(TokenRow)
        .where(TokenRow.user_id == user.id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def user_for_token(session: Session, token: str) -> UserRow | None:
    return session.scalar(
        select(UserRow)
        .join(TokenRow, TokenRow.user_id == UserRow.id)
        .where(
            TokenRow.token_sha256 == hash_token(token),
            TokenRow.revoked_at.is_(None),
            UserRow.disabled.is_(False),
        )
    )

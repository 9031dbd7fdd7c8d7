"""Small SQL helpers the store's modules share: ids, "insert or ignore" per dialect, 404 lookups."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsagent.errors import NotFoundError

_RowT = TypeVar("_RowT")


def insert_ignoring(session: Session, model: type[Any]) -> Any:
    """A dialect-specific INSERT that supports ``on_conflict_do_nothing``."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def new_id() -> str:
    return uuid.uuid4().hex


def require_row(session: Session, model: type[_RowT], key: str, what: str) -> _RowT:
    """The row with primary key ``key``, or ``NotFoundError`` naming it (the API's 404)."""
    row = session.get(model, key)
    if row is None:
        raise NotFoundError(f"{what} {key!r} does not exist")
    return row

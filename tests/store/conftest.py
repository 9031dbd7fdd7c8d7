"""Fixtures for the store tests: a migrated store on SQLite and on a PostgreSQL database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsagent.config import Settings
from opsagent.store import Store

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store; on PostgreSQL in a database created for the test and dropped after it."""
    url = None
    admin = None
    name = f"opsagent_store_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        import psycopg

        try:
            admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as exc:
            pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    store = Store(Settings(data_dir=tmp_path, database_url=url))
    store.migrate()
    try:
        yield store
    finally:
        store.close()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()

"""The database handle: engine, sessions and migrations for SQLite (default) or PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from opsagent.config import Settings
from opsagent.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every process migrating the same database.
_PG_MIGRATION_LOCK = 7_407_001
# As long as SQLite's busy timeout (PRAGMA busy_timeout below).
_WRITE_LOCK_TIMEOUT_SECONDS = 30.0


def _normalise_url(url: str) -> str:
    # psycopg 3 is the driver we ship; a bare postgresql:// URL would make SQLAlchemy look for psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the webhook answers 202 ("durably stored").
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers BEGIN IMMEDIATE, taking the write lock up front: two deferred transactions that both
        # later write would deadlock and one would fail with "database is locked". Readers BEGIN
        # deferred and, with WAL, never wait for a writer.
        if conn.get_execution_options().get("opsagent_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _lock_file(fd: int, timeout: float = _WRITE_LOCK_TIMEOUT_SECONDS) -> None:
    """flock ``fd``, polling every 0.1-2 ms (not SQLite's 25-100 ms); a StoreError after ``timeout``,
    as SQLite's busy timeout would, rather than waiting forever on a hung process."""
    deadline = time.monotonic() + timeout
    pause = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreError("database is locked by another process") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


class Store:
    """One engine per process. ``session()`` is a unit of work that may write: committed on success,
    rolled back on error; on SQLite it holds this process's write lock, so don't nest it. ``read()``
    is for reads only."""

    def __init__(self, settings: Settings) -> None:
        url = _normalise_url(settings.effective_database_url)
        self.url = url
        try:
            if url.startswith("sqlite"):
                if settings.database_url is None:
                    settings.data_dir.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(
                    url,
                    connect_args={"check_same_thread": False, "timeout": 30},
                    pool_size=settings.database_pool_size,
                    max_overflow=settings.database_max_overflow,
                    pool_timeout=settings.database_pool_timeout_seconds,
                )
                _sqlite_pragmas(self.engine)
            else:
                self.engine = create_engine(
                    url,
                    pool_size=settings.database_pool_size,
                    max_overflow=settings.database_max_overflow,
                    pool_timeout=settings.database_pool_timeout_seconds,
                    pool_pre_ping=True,
                )
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise StoreError(f"cannot open the database: {type(exc).__name__}") from exc
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(
            self.engine.execution_options(opsagent_write=True), expire_on_commit=False
        )
        self._readers = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer; serialising in-process writers avoids busy-waiting on its file lock.
        self.write_lock: threading.Lock | None = threading.Lock() if self.dialect == "sqlite" else None
        # ... and so does a lock file for writers in other processes (the API's investigation workers):
        # SQLite's busy handler polls with sleeps of up to 25-100 ms, which became the webhook's p99
        # whenever a worker held the lock; this lock is polled every 2 ms at most.
        self._write_lock_fd: int | None = None
        db_path = self.engine.url.database if self.dialect == "sqlite" else None
        if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
            try:
                self._write_lock_fd = os.open(f"{db_path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                log.warning("no cross-process write lock for %s: %s", db_path, exc)

    @contextmanager
    def session(self) -> Iterator[Session]:
        lock = self.write_lock
        if lock is not None:
            lock.acquire()
        fd = self._write_lock_fd
        try:
            if fd is not None:
                # After the thread lock: flock belongs to the open file, which our threads share.
                _lock_file(fd)
            with self._sessions() as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except SQLAlchemyError as exc:
            log.warning("database error: %s", exc)
            raise StoreError(f"database error ({type(exc).__name__})") from exc
        finally:
            if fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
            if lock is not None:
                lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: it neither takes nor waits for the write lock."""
        try:
            with self._readers() as session:
                try:
                    yield session
                finally:
                    session.rollback()
        except SQLAlchemyError as exc:
            log.warning("database error: %s", exc)
            raise StoreError(f"database error ({type(exc).__name__})") from exc

    def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to call from several processes at once)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self.engine.execution_options(opsagent_write=True).begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"database migration failed ({type(exc).__name__}: {exc})") from exc

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()
        if self._write_lock_fd is not None:
            os.close(self._write_lock_fd)
            self._write_lock_fd = None

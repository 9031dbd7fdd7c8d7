"""Group commit: concurrent webhook deliveries share one transaction and one fsync.

A commit that is really on disk costs milliseconds; one per delivery caps an alert storm at a few
hundred alerts per second. Here one writer thread takes every delivery waiting, stores them in one
transaction (``write`` gets the whole batch, so it can store it with set-based statements) and
commits once; each caller waits for that commit, so "202 Accepted" still means "durably stored".
Should the shared transaction fail, each delivery is retried alone, so one bad delivery cannot fail
its neighbours.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from opsagent.errors import StoreError
from opsagent.store.db import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """Runs ``write(session, items) -> results`` (one result per item, in order) for queued items,
    up to ``max_batch`` per transaction."""

    def __init__(
        self,
        store: Store,
        write: Callable[[Session, list[T]], list[R]],
        *,
        max_batch: int = 256,
        writers: int | None = None,
    ) -> None:
        self.store = store
        self.write = write
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
        # SQLite has one writer at a time anyway; PostgreSQL overlaps the round trips of several.
        count = writers or (1 if store.dialect == "sqlite" else 4)
        self._threads = [
            threading.Thread(target=self._loop, name=f"group-commit-{i}", daemon=True) for i in range(count)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def submit(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        if self._closed:
            future.set_exception(StoreError("shutting down"))
            return future
        self._queue.put((item, future))
        return future

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[tuple[T, Future[R]]]) -> None:
        try:
            with self.store.session() as s:
                results = self.write(s, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(
                    exc if isinstance(exc, StoreError) else StoreError(type(exc).__name__)
                )
                if not isinstance(exc, StoreError):
                    log.exception("write failed")
                return
            for one in batch:
                self._write([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    def close(self) -> None:
        """Stop after writing everything already submitted."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

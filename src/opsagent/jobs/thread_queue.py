"""Investigations in a fixed pool of threads of this process, claimed straight from the database."""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from opsagent.errors import StoreError
from opsagent.jobs.job import WORKER_NICENESS, Runner, worker_name
from opsagent.jobs.reaper import LeaseReaper
from opsagent.store import Store, investigations

log = logging.getLogger(__name__)


class LocalQueue:
    """``settings.workers`` threads in this process claim queued investigations from the database.

    ``reap``: also hand expired leases back to the queue (off in a worker process: its API does it).
    """

    def __init__(self, store: Store, runner: Runner, *, poll_seconds: float = 1.0, reap: bool = True) -> None:
        self.store = store
        self.runner = runner
        self.settings = runner.settings
        self.poll_seconds = poll_seconds
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reaper = LeaseReaper(store, self.settings, self.submit) if reap else None

    def start(self) -> None:
        if self._reaper is not None:
            self._reaper.reap()
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._loop, name=f"investigator-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._reaper is not None:
            self._reaper.start()

    def submit(self, inv_ids: list[str]) -> None:
        self.wake(len(inv_ids))

    def wake(self, n: int) -> None:
        # The jobs are already in the database; this only wakes idle workers sooner than the poll.
        if n > 0:
            with self._wake:
                self._wake.notify(n)

    def _loop(self) -> None:
        worker = worker_name("local")
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        while not self._stop.is_set():
            try:
                with self.store.session() as s:
                    inv_id = investigations.claim_next(
                        s, worker=worker, lease_seconds=self.settings.job_lease_seconds
                    )
            except StoreError:
                inv_id = None
                log.warning("investigation worker: database unavailable")
            if inv_id is None:
                with self._wake:
                    self._wake.wait(self.poll_seconds)
                continue
            self.runner.run(inv_id, worker=worker, claimed=True)

    def depth(self) -> int:
        with self.store.read() as s:
            return investigations.queued_count(s)

    def healthy(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        # Running investigations are not waited for: their lease expires and they run again elsewhere.
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if self._reaper is not None:
            self._reaper.stop()
        for thread in self._threads:
            thread.join(timeout=2)
        self.runner.close()

"""The lease reaper: hands investigations of vanished workers back to the queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from opsagent.config import Settings
from opsagent.errors import StoreError
from opsagent.store import Store, investigations

log = logging.getLogger(__name__)


class LeaseReaper:
    """Periodically hands investigations of vanished workers back to the queue."""

    def __init__(self, store: Store, settings: Settings, resubmit: Callable[[list[str]], None]) -> None:
        self.store = store
        self.settings = settings
        self.resubmit = resubmit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-reaper", daemon=True)

    def reap(self) -> list[str]:
        with self.store.session() as s:
            ids = investigations.requeue_expired(s, max_attempts=self.settings.job_max_attempts)
        if ids:
            log.warning("re-queued %d investigation(s) whose worker stopped: %s", len(ids), ids)
            self.resubmit(ids)
        return ids

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        interval = max(0.2, min(self.settings.job_lease_seconds / 2, 30.0))
        while not self._stop.wait(interval):
            try:
                self.reap()
            except StoreError:
                log.warning("lease reaper: database unavailable")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

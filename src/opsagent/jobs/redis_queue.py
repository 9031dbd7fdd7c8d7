"""Investigation ids on a Redis (rq) queue for ``opsagent worker`` processes, on any machine."""

from __future__ import annotations

import logging
import threading

import redis
from rq import Queue, SimpleWorker

from opsagent.config import Settings
from opsagent.errors import OpsAgentError
from opsagent.jobs.job import Runner, worker_name
from opsagent.jobs.reaper import LeaseReaper
from opsagent.pipeline import Services
from opsagent.store import Store, investigations

log = logging.getLogger(__name__)


def _rq_queue(settings: Settings) -> tuple[redis.Redis, Queue]:
    if not settings.redis_url:
        raise OpsAgentError("OPSAGENT_REDIS_URL is not set")
    conn = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    return conn, Queue(settings.redis_queue, connection=conn)


class RedisQueue:
    """Investigation ids on an rq queue for ``opsagent worker`` processes; the database stays the record."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.conn, self.queue = _rq_queue(settings)
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._reaper = LeaseReaper(store, settings, self.submit)

    def start(self) -> None:
        self.recover()
        self._reaper.start()

    def recover(self) -> None:
        """Enqueue what the database says is unfinished: duplicates are harmless, losses are not."""
        self._reaper.reap()
        with self.store.session() as s:
            self.submit(investigations.queued_ids(s))

    def submit(self, inv_ids: list[str]) -> None:
        with self._lock:
            retry = sorted(self._failed)
            self._failed.clear()
        for inv_id in [*retry, *inv_ids]:
            try:
                self.queue.enqueue_call(
                    "opsagent.jobs.redis_queue.execute",
                    args=(inv_id,),
                    timeout=int(max(600, self.settings.llm.max_seconds * 4)),
                    result_ttl=0,
                    failure_ttl=24 * 3600,
                )
            except Exception as exc:  # Redis down: the database still has it; retry on the next submit
                log.warning("could not enqueue investigation %s: %s", inv_id, type(exc).__name__)
                with self._lock:
                    self._failed.add(inv_id)

    def depth(self) -> int:
        with self.store.read() as s:
            return investigations.queued_count(s)

    def healthy(self) -> bool:
        try:
            return bool(self.conn.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._reaper.stop()
        self.conn.close()


# ------------------------------------------------------------------------------------ opsagent worker

_RUNNER: Runner | None = None


def execute(inv_id: str) -> str:
    """The rq job function: run one investigation in this worker process."""
    if _RUNNER is None:
        raise OpsAgentError("no investigation runner in this process; start it with `opsagent worker`")
    return _RUNNER.run(inv_id, worker=worker_name("rq"))


def run_worker(
    settings: Settings, services: Services, *, burst: bool = False, name: str | None = None
) -> None:
    """Process investigations from Redis until stopped (``burst``: until the queue is empty)."""
    global _RUNNER
    store = Store(settings)
    store.migrate()
    _RUNNER = Runner(store, services)
    queue = RedisQueue(store, settings)
    from opsagent.factory import start_expiry_sweeper

    # Pending approvals expire on time even where no API process runs.
    sweeper = start_expiry_sweeper(settings, store)
    try:
        queue.start()
        # SimpleWorker runs jobs in this process: the services (runbook index, models) are built once,
        # not once per forked job.
        worker = SimpleWorker([queue.queue], connection=queue.conn, name=name)
        worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        sweeper.stop()
        queue.close()
        store.close()
        _RUNNER = None

"""The investigation queue. A job accepted is never lost.

The database is the queue's durable state: an investigation row is ``queued`` when accepted,
``running`` with a lease while a worker has it, then ``done`` or ``failed``. A worker renews its
lease while the pipeline runs; a worker that dies stops renewing, and once the lease expires any
process hands the job to another worker (``requeue_expired``). Claiming is one conditional UPDATE,
so a job delivered twice (a re-enqueue racing a slow worker) still runs once at a time.

- ``LocalQueue`` (default): a fixed pool of threads in the API process claims jobs straight from
  the database, so concurrency is bounded and a backlog waits in the database, not in memory.
  Several API processes on one PostgreSQL share the backlog (``FOR UPDATE SKIP LOCKED``).
- ``RedisQueue`` (``OPSAGENT_REDIS_URL``): job ids go to an rq queue and ``opsagent worker``
  processes, on any machine, run them. Redis carries only the wake-up; the database stays the
  record, so a lost Redis message is recovered from it at start-up and by the lease reaper.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import redis
from rq import Queue, SimpleWorker

from opsagent.config import Settings
from opsagent.domain import Investigation
from opsagent.errors import OpsAgentError, StoreError
from opsagent.evidence.base import EvidenceSource
from opsagent.pipeline import Services, investigate
from opsagent.store import Store, repo

if TYPE_CHECKING:
    from opsagent.autonomy.runner import ActionRunner

log = logging.getLogger(__name__)

# outcome ("done", "failed", "retry", "skipped"), seconds, the investigation when there is one
JobCallback = Callable[[str, float, Investigation | None], None]


def worker_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def default_sources(settings: Settings) -> list[EvidenceSource]:
    """The live evidence sources (Prometheus, Loki, log files) configured in ``settings``."""
    from opsagent.factory import live_sources

    return live_sources(settings)


def build_services(settings: Settings, sources: list[EvidenceSource] | None) -> Services:
    from opsagent.factory import build_services as build

    return build(settings, default_sources(settings) if sources is None else sources)


class Runner:
    """Runs one investigation job: claim it, run ``pipeline.investigate``, store the result."""

    def __init__(
        self,
        store: Store,
        services: Services,
        *,
        on_finished: JobCallback | None = None,
    ) -> None:
        self.store = store
        self.services = services
        self.settings = services.settings
        self.on_finished = on_finished
        self._actions: ActionRunner | None = None

    def run(self, inv_id: str, *, worker: str, claimed: bool = False) -> str:
        """Run ``inv_id`` unless someone else has it; returns the outcome."""
        lease = self.settings.job_lease_seconds
        if not claimed:
            with self.store.session() as s:
                if not repo.claim(s, inv_id, worker=worker, lease_seconds=lease):
                    return "skipped"
        started = time.perf_counter()
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(inv_id, worker, stop), name=f"lease-{inv_id[:8]}", daemon=True
        )
        beat.start()
        try:
            with self.store.read() as s:
                incident = repo.load_incident(s, repo.get_investigation_row(s, inv_id).incident_id)
            result = investigate(incident, self.services)
        except Exception as exc:
            stop.set()
            if isinstance(exc, OpsAgentError):
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("investigation %s failed: %s", inv_id, reason)
            else:
                reason = f"internal error ({type(exc).__name__})"
                log.exception("investigation %s crashed", inv_id)
            with self.store.session() as s:
                status = repo.fail_investigation(
                    s, inv_id, reason, worker=worker, max_attempts=self.settings.job_max_attempts
                )
            outcome = "failed" if status == "failed" else "retry"
            self._notify(outcome, time.perf_counter() - started, None)
            return outcome
        finally:
            stop.set()
        with self.store.session() as s:
            stored = repo.finish_investigation(s, inv_id, result, worker=worker)
        outcome = "done" if stored else "skipped"
        if stored:
            self._act(result)
        self._notify(outcome, time.perf_counter() - started, result if stored else None)
        return outcome

    def _act(self, result: Investigation) -> None:
        """Hand the investigation's proposed actions to the autonomy runner (run, queue for approval, audit)."""
        if not result.findings.actions:
            return
        from opsagent.store.actions import build_action_runner

        try:
            if self._actions is None:
                self._actions = build_action_runner(self.settings, self.store, self.services.catalog)
            self._actions.process(result)
        except OpsAgentError as exc:
            # The findings are stored; a failing action step must not fail the investigation job.
            log.warning("actions for incident %s: %s", result.incident.id, exc)

    def _heartbeat(self, inv_id: str, worker: str, stop: threading.Event) -> None:
        lease = self.settings.job_lease_seconds
        while not stop.wait(lease / 3):
            try:
                with self.store.session() as s:
                    if not repo.renew_lease(s, inv_id, worker=worker, lease_seconds=lease):
                        return
            except StoreError:
                log.warning("could not renew the lease of investigation %s", inv_id)

    def _notify(self, outcome: str, seconds: float, inv: Investigation | None) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(outcome, seconds, inv)
            except Exception:
                log.exception("job callback failed")


class JobQueue(Protocol):
    """What the API needs of a queue."""

    def start(self) -> None: ...
    def submit(self, inv_ids: list[str]) -> None: ...
    def depth(self) -> int: ...
    def healthy(self) -> bool: ...
    def close(self) -> None: ...


class _Reaper:
    """Periodically hands investigations of vanished workers back to the queue."""

    def __init__(self, store: Store, settings: Settings, resubmit: Callable[[list[str]], None]) -> None:
        self.store = store
        self.settings = settings
        self.resubmit = resubmit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-reaper", daemon=True)

    def reap(self) -> list[str]:
        with self.store.session() as s:
            ids = repo.requeue_expired(s, max_attempts=self.settings.job_max_attempts)
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


class LocalQueue:
    """``settings.workers`` threads in this process claim queued investigations from the database."""

    def __init__(self, store: Store, runner: Runner, *, poll_seconds: float = 1.0) -> None:
        self.store = store
        self.runner = runner
        self.settings = runner.settings
        self.poll_seconds = poll_seconds
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reaper = _Reaper(store, self.settings, self.submit)

    def start(self) -> None:
        self._reaper.reap()
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._loop, name=f"investigator-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._reaper.start()

    def submit(self, inv_ids: list[str]) -> None:
        # The jobs are already in the database; this only wakes idle workers sooner than the poll.
        if inv_ids:
            with self._wake:
                self._wake.notify(len(inv_ids))

    def _loop(self) -> None:
        worker = worker_name("local")
        # Investigations yield the CPU to the webhook: an alert storm queues hundreds of them, and
        # accepting the alerts matters more than starting their analysis a moment earlier.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while not self._stop.is_set():
            try:
                with self.store.session() as s:
                    inv_id = repo.claim_next(s, worker=worker, lease_seconds=self.settings.job_lease_seconds)
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
            return repo.queued_count(s)

    def healthy(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        # Running investigations are not waited for: their lease expires and they run again elsewhere.
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self._reaper.stop()
        for thread in self._threads:
            thread.join(timeout=2)


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
        self._reaper = _Reaper(store, settings, self.submit)

    def start(self) -> None:
        self.recover()
        self._reaper.start()

    def recover(self) -> None:
        """Enqueue what the database says is unfinished: duplicates are harmless, losses are not."""
        self._reaper.reap()
        with self.store.session() as s:
            self.submit(repo.queued_ids(s))

    def submit(self, inv_ids: list[str]) -> None:
        with self._lock:
            retry = sorted(self._failed)
            self._failed.clear()
        for inv_id in [*retry, *inv_ids]:
            try:
                self.queue.enqueue_call(
                    "opsagent.jobs.execute",
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
            return repo.queued_count(s)

    def healthy(self) -> bool:
        try:
            return bool(self.conn.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._reaper.stop()
        self.conn.close()


def build_queue(store: Store, runner: Runner) -> JobQueue:
    if runner.settings.redis_url:
        return RedisQueue(store, runner.settings)
    return LocalQueue(store, runner)


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
    from opsagent.store.actions import start_expiry_sweeper

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

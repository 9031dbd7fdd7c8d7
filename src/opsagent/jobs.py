"""The investigation queue. A job accepted is never lost.

The database is the queue's durable state: an investigation row is ``queued`` when accepted,
``running`` with a lease while a worker has it, then ``done`` or ``failed``. A worker renews its
lease while the pipeline runs; a worker that dies stops renewing, and once the lease expires any
process hands the job to another worker (``requeue_expired``). Claiming is one conditional UPDATE,
so a job delivered twice (a re-enqueue racing a slow worker) still runs once at a time.

- ``ProcessQueue`` (default, ``worker_mode = "process"``): the API process spawns
  ``worker_processes`` worker processes, supervises them (a dead one is restarted, with backoff) and
  stops them at shutdown. Each builds its services once and runs a ``LocalQueue`` of ``workers``
  threads at a lower OS priority, so investigations never hold the API's GIL and yield the CPU to the
  webhook. The API only wakes them (a byte on a pipe, a hint: they also poll the database) and
  receives one small report per finished job for its metrics.
- ``LocalQueue`` (``worker_mode = "thread"``): a fixed pool of threads in the API process claims
  jobs straight from the database, so concurrency is bounded and a backlog waits in the database,
  not in memory. Several API processes on one PostgreSQL share the backlog (``FOR UPDATE SKIP LOCKED``).
- ``RedisQueue`` (``OPSAGENT_REDIS_URL``): job ids go to an rq queue and ``opsagent worker``
  processes, on any machine, run them. Redis carries only the wake-up; the database stays the
  record, so a lost Redis message is recovered from it at start-up and by the lease reaper.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any
from typing import TYPE_CHECKING, Any, Protocol

import redis
from rq import Queue, SimpleWorker

from opsagent.config import Settings
from opsagent.domain import Investigation
from opsagent.errors import OpsAgentError, StoreError
from opsagent.evidence.base import EvidenceSource
from opsagent.pipeline import Services, investigate
from opsagent.store import Store, incidents, investigations

if TYPE_CHECKING:
    from opsagent.autonomy.runner import ActionRunner

log = logging.getLogger(__name__)

# Investigations yield the CPU to the webhook: an alert storm queues hundreds of them, and accepting
# the alerts matters more than starting their analysis a moment earlier.
WORKER_NICENESS = 10


@dataclass(frozen=True)
class JobReport:
    """A finished job as the API's metrics see it: small and picklable, it crosses from a worker process."""

    outcome: str  # "done", "failed", "retry", "skipped"
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0


JobCallback = Callable[[JobReport], None]


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
                if not investigations.claim(s, inv_id, worker=worker, lease_seconds=lease):
                    return "skipped"
        started = time.perf_counter()
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(inv_id, worker, stop), name=f"lease-{inv_id[:8]}", daemon=True
        )
        beat.start()
        try:
            with self.store.read() as s:
                incident = incidents.load_incident(
                    s, investigations.get_investigation_row(s, inv_id).incident_id
                )
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
                status = investigations.fail_investigation(
                    s, inv_id, reason, worker=worker, max_attempts=self.settings.job_max_attempts
                )
            outcome = "failed" if status == "failed" else "retry"
            self._notify(JobReport(outcome, time.perf_counter() - started))
            return outcome
        finally:
            stop.set()
        with self.store.session() as s:
            stored = investigations.finish_investigation(s, inv_id, result, worker=worker)
        outcome = "done" if stored else "skipped"
        if stored:
            self._act(result)
        tokens = (result.trace.prompt_tokens, result.trace.completion_tokens) if stored else (0, 0)
        self._notify(JobReport(outcome, time.perf_counter() - started, *tokens))
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
                    if not investigations.renew_lease(s, inv_id, worker=worker, lease_seconds=lease):
                        return
            except StoreError:
                log.warning("could not renew the lease of investigation %s", inv_id)

    def _notify(self, report: JobReport) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(report)
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
        self._reaper = _Reaper(store, self.settings, self.submit) if reap else None

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


class _Slot:
    """One worker process of a ``ProcessQueue`` and the parent's ends of its pipes."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.wake: Connection | None = None  # parent -> child, non-blocking: wake-up bytes
        self.reports: Connection | None = None  # child -> parent: JobReport and start-up messages
        self.started = 0.0
        self.ready = False
        self.restart_at = 0.0
        self.backoff = _RESTART_MIN_SECONDS


_RESTART_MIN_SECONDS = 1.0
_RESTART_MAX_SECONDS = 30.0
# A worker that dies sooner than this after its start is probably crash-looping: back off.
_STABLE_SECONDS = 60.0
# After the wake pipe closes, how long a worker has to leave before it is terminated, then killed.
_STOP_GRACE_SECONDS = 10.0
# How long start() waits for the workers' services (a first start embeds the runbooks in the API
# before the workers start, so theirs is only loading: seconds).
_START_TIMEOUT_SECONDS = 120.0


class ProcessQueue:
    """Investigations in ``settings.worker_processes`` worker processes that this (API) process
    spawns, supervises and stops; each runs a ``LocalQueue`` of ``settings.workers`` threads.

    The database stays the queue: workers claim from it, so the durability contract is the one of
    ``LocalQueue`` (a killed worker's lease expires, the reaper here re-queues its job, the
    restarted worker runs it). ``sources`` are sent to the workers (pickled); ``None`` means the
    live sources of ``settings``, built by each worker.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        sources: list[EvidenceSource] | None = None,
        on_finished: JobCallback | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.sources = sources
        self.on_finished = on_finished
        # spawn, not fork: the API process has threads (uvicorn, group commit, database pools) whose
        # locks a forked child would inherit in whatever state they were.
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(settings.worker_processes)]
        # Held while a slot's pipes change, so submit() never writes to a closed (or reused) descriptor.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self._reaper = _Reaper(store, settings, self.submit)
        self._all_ready = threading.Event()
        self.restarts = 0

    def start(self) -> None:
        if self.sources is not None:
            try:
                pickle.dumps(self.sources)
            except Exception as exc:
                raise OpsAgentError(
                    f"the evidence sources cannot be sent to a worker process ({type(exc).__name__}: {exc}); "
                    "set OPSAGENT_WORKER_MODE=thread to run investigations in the API process"
                ) from exc
        self._reaper.reap()
        for slot in self._slots:
            self._spawn(slot)
        self._supervisor.start()
        self._reaper.start()
        # The API starts serving once its workers can investigate: readiness means it, and a load
        # arriving right away does not compete with their start-up.
        if not self._all_ready.wait(_START_TIMEOUT_SECONDS):
            log.warning(
                "investigation workers not ready after %.0f s; serving anyway", _START_TIMEOUT_SECONDS
            )

    def submit(self, inv_ids: list[str]) -> None:
        # Called on the event loop: a non-blocking write of a few bytes per worker, never a wait. A
        # full or broken pipe loses only the hint; the workers poll the database as well.
        if not inv_ids:
            return
        signal_bytes = b"\x01" * min(len(inv_ids), 64)
        with self._lock:
            for slot in self._slots:
                if slot.wake is not None:
                    with contextlib.suppress(OSError):
                        os.write(slot.wake.fileno(), signal_bytes)

    def depth(self) -> int:
        with self.store.read() as s:
            return investigations.queued_count(s)

    def healthy(self) -> bool:
        """Every worker process is running and has built its services (one being restarted is not)."""
        states = [(slot.process, slot.ready) for slot in self._slots]
        return all(proc is not None and proc.exitcode is None and ready for proc, ready in states)

    def close(self) -> None:
        """Stop the workers: closing their wake pipe tells them to leave; running investigations are
        not waited for (their lease expires and they run again), stragglers are terminated."""
        self._stop.set()
        self._reaper.stop()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=5)
        with self._lock:
            for slot in self._slots:
                if slot.wake is not None:
                    slot.wake.close()
                    slot.wake = None
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for slot in self._slots:
            proc = slot.process
            if proc is None:
                continue
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.warning("investigation worker %s did not stop in time; terminating it", proc.pid)
                proc.terminate()
                proc.join(timeout=3)
            if proc.exitcode is None:
                proc.kill()
                proc.join(timeout=3)
            self._drain(slot)
            self._retire(slot)

    # ---------------------------------------------------------------------------------- supervision

    def _spawn(self, slot: _Slot) -> None:
        wake_r, wake_w = self._ctx.Pipe(duplex=False)
        reports_r, reports_w = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=serve_investigations,
            args=(self.settings, self.sources, wake_r, reports_w),
            name=f"opsagent-investigator-{slot.index}",
            # daemon: should the API exit without close(), multiprocessing still ends its workers.
            daemon=True,
        )
        try:
            proc.start()
        finally:
            # The child has its own copies; ours must go, or the child would never see EOF on the
            # wake pipe (its signal that the API has gone) and we none on the report pipe.
            wake_r.close()
            reports_w.close()
        os.set_blocking(wake_w.fileno(), False)
        with self._lock:
            slot.process, slot.wake, slot.reports = proc, wake_w, reports_r
            slot.started, slot.ready = time.monotonic(), False

    def _supervise(self) -> None:
        while not self._stop.is_set():
            waitables: list[Any] = []
            for slot in self._slots:
                if slot.process is not None and slot.reports is not None:
                    waitables += [slot.reports, slot.process.sentinel]
            try:
                if waitables:
                    wait_any(waitables, timeout=0.5)
                else:
                    self._stop.wait(0.2)
                for slot in self._slots:
                    self._watch(slot)
            except Exception:  # the supervisor must outlive any one surprise
                log.exception("investigation worker supervisor")
                self._stop.wait(1.0)

    def _watch(self, slot: _Slot) -> None:
        if slot.process is None:
            if not self._stop.is_set() and time.monotonic() >= slot.restart_at:
                self.restarts += 1
                self._spawn(slot)
            return
        self._drain(slot)
        if slot.process.exitcode is None:
            return
        lived = time.monotonic() - slot.started
        # A worker that keeps dying young (a bad setting, a broken model file) is restarted ever
        # more slowly; one that ran for a while was probably killed, and comes back at once.
        delay = slot.backoff if lived < _STABLE_SECONDS else _RESTART_MIN_SECONDS
        slot.backoff = min(delay * 2, _RESTART_MAX_SECONDS)
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "investigation worker %s exited with %s after %.1f s; restarting it in %.1f s "
            "(its running investigations return to the queue when their lease expires)",
            slot.process.pid,
            slot.process.exitcode,
            lived,
            delay,
        )
        self._retire(slot)

    def _drain(self, slot: _Slot) -> None:
        conn = slot.reports
        if conn is None:
            return
        try:
            while conn.poll():
                self._handle(slot, conn.recv())
        except (EOFError, OSError):
            pass  # the worker has gone; _watch sees its exit code

    def _handle(self, slot: _Slot, message: object) -> None:
        if isinstance(message, JobReport):
            if self.on_finished is not None:
                try:
                    self.on_finished(message)
                except Exception:
                    log.exception("job callback failed")
        elif isinstance(message, tuple) and message and message[0] == "ready":
            slot.ready = True
            if all(s.ready for s in self._slots):
                self._all_ready.set()
            log.info("investigation worker %s ready after %.1f s", message[1], message[2])

    def _retire(self, slot: _Slot) -> None:
        with self._lock:
            for conn in (slot.wake, slot.reports):
                if conn is not None:
                    conn.close()
            # The Process object itself is left to the garbage collector: healthy() may be reading it.
            slot.process, slot.wake, slot.reports = None, None, None


def serve_investigations(
    settings: Settings, sources: list[EvidenceSource] | None, wake: Connection, reports: Connection
) -> None:
    """A worker process of ``ProcessQueue``: build the services once, run investigations from the
    database until the wake pipe closes (the API stopped or died) or SIGTERM, then leave."""
    # Ctrl-C reaches the whole process group; the API decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    send_lock = threading.Lock()

    def report(message: object) -> None:
        with send_lock, contextlib.suppress(OSError):
            reports.send(message)

    code = 0
    store: Store | None = None
    queue: LocalQueue | None = None
    try:
        started = time.monotonic()
        services = build_services(settings, sources)
        store = Store(settings)
        # As in the API: the long-lived heap (models, index, schemas) need not be walked by every
        # full collection.
        gc.collect()
        gc.freeze()
        queue = LocalQueue(store, Runner(store, services, on_finished=report), reap=False)
        queue.start()
        report(("ready", os.getpid(), time.monotonic() - started))
        fd = wake.fileno()
        while data := os.read(fd, 4096):
            queue.wake(len(data))
    except SystemExit:
        pass
    except BaseException:
        log.exception("investigation worker %s failed", os.getpid())
        code = 1
    finally:
        if queue is not None:
            queue.close()
        if store is not None:
            store.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip interpreter teardown: daemon threads (a running investigation, ONNX, Chroma) may hold
        # locks it would wait for; whatever they were doing is recovered through the lease.
        os._exit(code)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)


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
            self.submit(investigations.queued_ids(s))

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
            return investigations.queued_count(s)

    def healthy(self) -> bool:
        try:
            return bool(self.conn.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._reaper.stop()
        self.conn.close()


def build_queue(store: Store, runner: Runner, *, sources: list[EvidenceSource] | None = None) -> JobQueue:
    """Redis workers with ``redis_url``; else worker processes, or threads of this process
    (``worker_mode``). ``runner`` runs the jobs in thread mode; in process mode each worker builds
    its own from ``sources`` (``None``: the live sources) and ``runner.on_finished`` gets their reports."""
    settings = runner.settings
    if settings.redis_url:
        return RedisQueue(store, settings)
    if settings.worker_mode == "thread":
        return LocalQueue(store, runner)
    return ProcessQueue(store, settings, sources=sources, on_finished=runner.on_finished)


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

"""Investigations in worker processes that the API process spawns, supervises and stops."""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any
from typing import Any

from opsagent.config import Settings
from opsagent.errors import OpsAgentError
from opsagent.evidence.base import EvidenceSource
from opsagent.jobs.job import WORKER_NICENESS, JobCallback, JobReport, Runner
from opsagent.jobs.reaper import LeaseReaper
from opsagent.jobs.thread_queue import LocalQueue
from opsagent.store import Store, investigations

log = logging.getLogger(__name__)


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
        self._reaper = LeaseReaper(store, settings, self.submit)
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
        from opsagent.factory import build_services

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

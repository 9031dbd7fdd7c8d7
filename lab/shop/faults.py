"""The faults a shop service can be told to have, each through the mechanism that causes it in real life.

A service holds at most one active fault. Every fault ends by itself when its duration runs out
(a watchdog thread), so a campaign runner that dies mid-fault never leaves a service broken; the
runner also clears it explicitly.

- ``cpu``: busy threads spinning in Python; they take the interpreter lock, so the service's own
  requests slow down, as a CPU-bound service's do.
- ``memory``: a leak: ``magnitude`` MB per second appended to a list that is never freed (up to a cap).
- ``latency``: every request waits ``magnitude`` seconds before it is handled (a slow dependency or a
  slow network path in front of the handler).
- ``errors``: a share ``magnitude`` of requests fail with an exception and a 500.
- ``early-exit``: a share ``magnitude`` of requests return success before calling the service's
  dependencies (a code path that returns early after a bad change).
- ``pool-leak``: the service's database connections are checked out and never returned, so requests
  wait for the pool and time out.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("cpu", "memory", "latency", "errors", "early-exit", "pool-leak")
_LEAK_CAP_MB = 600


@dataclass
class ActiveFault:
    kind: str
    magnitude: float
    until: float
    stop: threading.Event = field(default_factory=threading.Event)
    held: list[Any] = field(default_factory=list)


class FaultState:
    """The service's current fault; methods are called from request threads."""

    def __init__(self, pool: Any | None = None) -> None:
        self._lock = threading.Lock()
        self._fault: ActiveFault | None = None
        self._pool = pool

    def current(self) -> ActiveFault | None:
        fault = self._fault
        if fault is not None and time.time() >= fault.until:
            self.clear()
            return None
        return fault

    def describe(self) -> dict[str, Any]:
        fault = self.current()
        if fault is None:
            return {"active": False}
        return {"active": True, "kind": fault.kind, "magnitude": fault.magnitude, "until": fault.until}

    def start(self, kind: str, magnitude: float, seconds: float) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(KINDS)})")
        if kind == "pool-leak" and self._pool is None:
            raise ValueError("this service has no database pool to exhaust")
        self.clear()
        fault = ActiveFault(kind, magnitude, time.time() + seconds)
        with self._lock:
            self._fault = fault
        if kind == "cpu":
            for _ in range(max(1, int(magnitude))):
                threading.Thread(target=_spin, args=(fault,), daemon=True).start()
        elif kind == "memory":
            threading.Thread(target=_leak, args=(fault,), daemon=True).start()
        elif kind == "pool-leak":
            threading.Thread(target=self._drain_pool, args=(fault,), daemon=True).start()
        threading.Thread(target=self._watchdog, args=(fault,), daemon=True).start()

    def clear(self) -> None:
        with self._lock:
            fault, self._fault = self._fault, None
        if fault is None:
            return
        fault.stop.set()
        if fault.kind == "pool-leak" and self._pool is not None:
            for conn in fault.held:
                self._pool.release(conn)
        fault.held.clear()

    def _watchdog(self, fault: ActiveFault) -> None:
        fault.stop.wait(max(0.0, fault.until - time.time()))
        if self._fault is fault:
            self.clear()

    def _drain_pool(self, fault: ActiveFault) -> None:
        # Take connections as they come free, as a leak would: requests holding one finish first.
        assert self._pool is not None
        while not fault.stop.is_set():
            try:
                conn = self._pool.acquire(timeout=0.5)
            except Exception:  # pool empty: everything is held already
                continue
            if fault.stop.is_set():
                self._pool.release(conn)
                return
            fault.held.append(conn)

    # What request handlers ask.
    def delay(self) -> float:
        fault = self.current()
        return fault.magnitude if fault is not None and fault.kind == "latency" else 0.0

    def fails(self) -> bool:
        fault = self.current()
        return fault is not None and fault.kind == "errors" and random.random() < fault.magnitude

    def exits_early(self) -> bool:
        fault = self.current()
        return fault is not None and fault.kind == "early-exit" and random.random() < fault.magnitude


def _spin(fault: ActiveFault) -> None:
    x = 0
    while not fault.stop.is_set():
        for i in range(20_000):
            x = (x * 31 + i) % 1_000_003


def _leak(fault: ActiveFault) -> None:
    chunk = max(1, int(fault.magnitude * 1024 * 1024 / 10))
    while not fault.stop.is_set() and len(fault.held) * chunk < _LEAK_CAP_MB * 1024 * 1024:
        # Filled bytes, not bytearray(n): calloc'd zero pages would not count as resident memory.
        fault.held.append(b"\x5a" * chunk)
        fault.stop.wait(0.1)

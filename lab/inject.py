"""The fault injector: eight kinds of fault, each through the mechanism that causes it in real life.

A fault has a kind, a target, a magnitude and a duration. ``start`` records it in
``.lab/run/fault.json`` before it touches anything, and ``clear`` (or ``clear_all``, which reads that
file) undoes it: a service is told to stop misbehaving, a stopped dependency is started again, a lock
holder is stopped by its PID. Faults inside a service also end by themselves when their duration runs
out, and a lock holder exits on its own, so nothing stays broken if the runner dies.

| kind | mechanism | targets | fault type (truth) |
|---|---|---|---|
| cpu-hog | busy threads inside the service's process | any service | cpu |
| memory-leak | the process keeps allocating and never frees | any service | memory |
| latency | every request waits before it is handled | any service | latency-network |
| errors | a share of requests raise an unhandled exception (500) | any service | errors-code |
| early-exit | handlers return success before calling their dependencies | services that call others | errors-code |
| dependency-down | the dependency's process is stopped (PID), then started again | postgres, redis | unavailable |
| db-lock | another session takes an ACCESS EXCLUSIVE lock on the service's table, again and again | catalog, inventory, checkout | latency-network |
| pool-exhaustion | the service's database connections leak (checked out, never returned) | catalog, inventory, checkout | errors-code |
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from lab import layout

_DB_SERVICES = ("catalog", "inventory", "checkout")
_CALLERS = tuple(s.name for s in layout.SERVICES if s.calls or s.stores)
_ALL = tuple(s.name for s in layout.SERVICES)
TABLES = {"catalog": "products", "inventory": "stock", "checkout": "orders"}


@dataclass(frozen=True)
class Kind:
    name: str
    targets: tuple[str, ...]
    fault_type: str
    magnitude: float
    unit: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("cpu-hog", _ALL, "cpu", 2, "busy threads"),
        Kind("memory-leak", _ALL, "memory", 6, "MB/s"),
        Kind("latency", _ALL, "latency-network", 0.6, "s per request"),
        Kind("errors", _ALL, "errors-code", 0.4, "share of requests"),
        Kind("early-exit", _CALLERS, "errors-code", 1.0, "share of requests"),
        Kind("dependency-down", layout.DEPENDENCIES, "unavailable", 1, "stopped"),
        Kind("db-lock", _DB_SERVICES, "latency-network", 0.8, "s locked per second"),
        Kind("pool-exhaustion", _DB_SERVICES, "errors-code", 1, "whole pool"),
    )
}
_IN_PROCESS = {
    "cpu-hog": "cpu",
    "memory-leak": "memory",
    "latency": "latency",
    "errors": "errors",
    "early-exit": "early-exit",
    "pool-exhaustion": "pool-leak",
}


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    magnitude: float
    seconds: float

    @classmethod
    def of(cls, kind: str, target: str, seconds: float, magnitude: float | None = None) -> Fault:
        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(KINDS)})")
        if target not in spec.targets:
            raise ValueError(f"{kind} cannot target {target!r} (expected one of {', '.join(spec.targets)})")
        return cls(kind, target, spec.magnitude if magnitude is None else magnitude, seconds)

    @property
    def fault_type(self) -> str:
        return KINDS[self.kind].fault_type


def _state_file() -> Any:
    return layout.STATE / "run" / "fault.json"


def _admin(service: str, method: str, body: dict[str, Any] | None = None) -> None:
    response = httpx.request(method, f"{layout.url_of(service)}/admin/fault", json=body, timeout=5.0)
    if response.status_code != 200:
        raise RuntimeError(f"{service} refused the fault: {response.text[:200]}")


def start(fault: Fault) -> float:
    """Inject ``fault``; returns its start time (epoch seconds)."""
    from lab import stack

    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {**asdict(fault), "started": time.time()}
    path.write_text(json.dumps(record))
    if fault.kind in _IN_PROCESS:
        _admin(
            fault.target,
            "POST",
            {"kind": _IN_PROCESS[fault.kind], "magnitude": fault.magnitude, "seconds": fault.seconds},
        )
    elif fault.kind == "dependency-down":
        if fault.target == "postgres":
            stack.stop_postgres()
        else:
            pid = stack.read_pid("redis")
            if pid is not None:
                stack.stop_pid(pid, "redis")
    elif fault.kind == "db-lock":
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab.inject",
                "hold-lock",
                TABLES[fault.target],
                str(fault.magnitude),
                str(fault.seconds),
            ],
            cwd=layout.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(layout.STATE / "run" / "lock-holder.log").open("ab"),
            start_new_session=True,
        )
        record["holder_pid"] = proc.pid
        path.write_text(json.dumps(record))
    return float(record["started"])


def current() -> dict[str, Any] | None:
    """The fault in progress as ``start`` recorded it, if any."""
    path = _state_file()
    if not path.exists():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def clear(fault: Fault, holder_pid: int | None = None) -> None:
    """Undo ``fault``; safe to call twice and after the fault ended by itself."""
    from lab import stack

    if fault.kind in _IN_PROCESS:
        try:
            _admin(fault.target, "DELETE")
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"  could not clear {fault.kind} on {fault.target}: {exc}", flush=True)
        if fault.kind == "memory-leak":
            # The allocator keeps freed memory: what takes a leaking process back to normal is what
            # an operator does, a restart.
            pid = stack.read_pid(fault.target)
            if pid is not None:
                stack.stop_pid(pid, fault.target)
            stack.start_part(next(p for p in stack.parts() if p.name == fault.target))
    elif fault.kind == "dependency-down":
        if fault.target == "postgres":
            stack.start_postgres()
        else:
            stack.start_part(next(p for p in stack.parts() if p.name == "redis"))
    elif fault.kind == "db-lock" and holder_pid is not None and stack.alive(holder_pid):
        stack.stop_pid(holder_pid, "lock-holder")
    _state_file().unlink(missing_ok=True)
    # When the last fault ended, so that the next one (of any campaign) keeps its distance.
    (layout.STATE / "run" / "last-fault-end").write_text(f"{time.time():.1f}\n")


def last_end() -> float | None:
    """When the last fault in this lab was cleared (epoch seconds), if one was."""
    try:
        return float((layout.STATE / "run" / "last-fault-end").read_text())
    except (OSError, ValueError):
        return None


def clear_all() -> None:
    """Undo whatever fault ``.lab/run/fault.json`` records (after a runner died mid-fault)."""
    path = _state_file()
    if not path.exists():
        return
    record = json.loads(path.read_text())
    fault = Fault(record["kind"], record["target"], float(record["magnitude"]), float(record["seconds"]))
    print(f"clearing {fault.kind} on {fault.target}", flush=True)
    clear(fault, record.get("holder_pid"))


def hold_lock(table: str, held: float, seconds: float) -> None:
    """Another session takes ACCESS EXCLUSIVE on ``table`` for ``held`` s of every second.

    What a migration or a batch job holding a table lock does: the service's queries queue behind it.
    """
    import psycopg

    until = time.time() + seconds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with psycopg.connect(layout.postgres_dsn()) as conn:
        conn.execute("SET application_name = 'nightly-reindex'")
        conn.commit()
        while time.time() < until:
            with conn.transaction():
                conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                time.sleep(held)
            time.sleep(max(0.05, 1.0 - held))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "hold-lock":
        hold_lock(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("usage: python -m lab.inject hold-lock TABLE HELD_S SECONDS")

"""Alert storm (issue 7): N alerts from C concurrent clients, a share of them delivered twice, against
``opsagent serve`` on loopback. Reports accepted alerts/s, p50/p99 latency, and incidents, alerts and
investigations stored versus expected (zero lost, zero duplicated).

    python -m bench.alert_storm [--alerts 5000] [--clients 50] [--duplicates 0.1] [--groups 450]
                                [--database-url postgresql://...] [--level L1] [--rate 500] [--repeat 3]

With ``--rate`` the clients send on an open-loop schedule and latency counts from when each request
was due. Without it (closed loop) each client sends its next alert once the last is answered, so
by Little's law 50 clients at 500 alerts/s mean 100 ms per request whatever the server does: the
p99 target is meant at an offered rate. The server's CPU time per alert and the load average are
reported too: on a shared machine latency varies with the neighbours, CPU per alert much less.

Each request is one Alertmanager payload (version 4) carrying one alert; alerts belong to
``--groups`` groups, so that many incidents are expected. Duplicates are exact redeliveries, half of
them sent right behind the original (so they race it), half later. The client is a minimal
keep-alive HTTP/1.1 client on asyncio, to spend as little of the shared CPU as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOKEN = "bench-webhook-token"
ADMIN = "bench-admin-token"
PATH = "/v1/alerts/alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def payloads(n_alerts: int, dup_ratio: float, groups: int, seed: int = 7) -> tuple[list[bytes], int, int]:
    """Request bodies in sending order; (bodies, unique alerts, groups)."""
    rng = random.Random(seed)
    n_dups = round(n_alerts * dup_ratio)
    n_unique = n_alerts - n_dups
    base = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    run = f"{time.time_ns():x}"
    unique: list[bytes] = []
    for i in range(n_unique):
        g = i % groups
        labels = {
            "alertname": f"StormAlert{g % 17}",
            "service": f"svc-{g}",
            "namespace": "bench",
            "pod": f"svc-{g}-{i}",
            "severity": "warning",
        }
        body = {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="StormAlert{g % 17}", service="svc-{g}", run="{run}"}}',
            "status": "firing",
            "receiver": "opsagent",
            "groupLabels": {"alertname": labels["alertname"], "service": labels["service"]},
            "commonLabels": labels,
            "commonAnnotations": {"summary": f"storm alert {i}"},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 0,
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": f"storm alert {i}"},
                    "startsAt": (base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph",
                    "fingerprint": f"{run}{i:08x}"[-16:],
                }
            ],
        }
        unique.append(json.dumps(body).encode())
    order = list(range(n_unique))
    rng.shuffle(order)
    bodies = [unique[i] for i in order]
    dup_of = rng.sample(range(n_unique), n_dups)
    # Half right behind the original (racing it), half anywhere later.
    for k, i in enumerate(dup_of):
        pos = bodies.index(unique[i])
        at = pos + 1 if k % 2 == 0 else rng.randint(pos + 1, len(bodies))
        bodies.insert(at, unique[i])
    return bodies, n_unique, min(groups, n_unique)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


async def _client(
    port: int, queue: asyncio.Queue[tuple[float, bytes] | None], tally: Tally, start: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\n"
    )
    try:
        while (item := await queue.get()) is not None:
            due, body = item
            request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            if due:
                # Open loop: latency counts from when the request was due, so a server that falls
                # behind is charged for the wait (no coordinated omission).
                await asyncio.sleep(max(0.0, start + due - time.perf_counter()))
                started = start + due
            else:
                started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            data = await reader.readexactly(length)
            tally.latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status == 202:
                answer = json.loads(data)
                tally.accepted += answer["accepted"]
                tally.duplicates += answer["duplicates"]
            elif len(tally.errors) < 5:
                tally.errors.append(f"{status}: {data[:200]!r}")
    finally:
        writer.close()


async def storm(port: int, bodies: list[bytes], clients: int, rate: float = 0.0) -> tuple[Tally, float]:
    """Send every body; as fast as the clients go (``rate`` 0) or at ``rate`` requests/s in total."""
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((i / rate if rate else 0.0, body))
    for _ in range(clients):
        queue.put_nowait(None)
    tally = Tally()
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, queue, tally, started) for _ in range(clients)))
    return tally, time.perf_counter() - started


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def count_stored(env: dict[str, str]) -> dict[str, int]:
    """Count what the database holds, through the same store the server used."""
    from sqlalchemy import func, select

    from opsagent.config import Settings
    from opsagent.store import Store
    from opsagent.store.models import AlertRow, IncidentRow, InvestigationRow

    settings = Settings(
        data_dir=Path(env["OPSAGENT_DATA_DIR"]), database_url=env.get("OPSAGENT_DATABASE_URL")
    )
    store = Store(settings)
    try:
        with store.session() as s:
            return {
                "incidents": s.scalar(select(func.count()).select_from(IncidentRow)) or 0,
                "alerts": s.scalar(select(func.count()).select_from(AlertRow)) or 0,
                "investigations": s.scalar(
                    select(func.count())
                    .select_from(InvestigationRow)
                    .where(InvestigationRow.trigger == "alert")
                )
                or 0,
            }
    finally:
        store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux), 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """Child processes of ``pid`` (the service's investigation workers), [] where /proc is missing."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[round(q * 1000) - 1] if len(values) > 1 else values[0]


def run_once(args: argparse.Namespace) -> dict[str, object]:
    """One storm against a fresh server and an empty database; the figures."""
    bodies, n_unique, n_groups = payloads(args.alerts, args.duplicates, args.groups)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="opsagent-storm-") as tmp:
        env = {
            **os.environ,
            "OPSAGENT_DATA_DIR": tmp,
            "OPSAGENT_WEBHOOK_TOKEN": TOKEN,
            "OPSAGENT_API_TOKENS": json.dumps([{"name": "bench", "token": ADMIN, "role": "admin"}]),
            "OPSAGENT_AUTONOMY_LEVEL": args.level,
        }
        if args.database_url:
            env["OPSAGENT_DATABASE_URL"] = args.database_url
        cmd = [sys.executable, "-m", "opsagent.cli", "serve", "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(cmd, env=env)
        try:
            wait_ready(port, proc)
            load_before = load_average()
            cpu_before = cpu_seconds(proc.pid)
            # Investigations may run in worker processes (worker_mode "process"): their CPU is shown apart.
            workers = children_of(proc.pid)
            workers_before = sum(cpu_seconds(w) for w in workers)
            tally, seconds = asyncio.run(storm(port, bodies, args.clients, args.rate))
            server_cpu = cpu_seconds(proc.pid) - cpu_before
            workers_cpu = sum(cpu_seconds(w) for w in workers) - workers_before
            load_after = load_average()
            stored = count_stored(env)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if args.database_url:
            clear_database(args.database_url)

    ok_requests = tally.statuses.get(202, 0)
    expected_invest = n_groups if args.level.upper() not in ("L0", "0") else 0
    figures: dict[str, object] = {
        "requests": len(bodies),
        "clients": args.clients,
        "offered_rate": args.rate or "closed loop",
        "database": "postgresql" if args.database_url else "sqlite",
        "level": args.level,
        "seconds": round(seconds, 3),
        "accepted_per_second": round(ok_requests / seconds, 1),
        "p50_ms": round(pct(tally.latencies, 0.5) * 1000, 2),
        "p99_ms": round(pct(tally.latencies, 0.99) * 1000, 2),
        "max_ms": round(max(tally.latencies) * 1000, 2),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(bodies), 3),
        "workers_cpu_ms_per_request": round(workers_cpu * 1000 / len(bodies), 3),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "alerts_expected": n_unique,
        "alerts_stored": stored["alerts"],
        "alerts_reported_new": tally.accepted,
        "duplicates_sent": len(bodies) - n_unique,
        "duplicates_recognised": tally.duplicates,
        "incidents_expected": n_groups,
        "incidents_created": stored["incidents"],
        "investigations_expected": expected_invest,
        "investigations_queued": stored["investigations"],
    }
    lost = n_unique - stored["alerts"]
    duplicated = (
        max(0, stored["alerts"] - n_unique)
        + max(0, stored["incidents"] - n_groups)
        + max(0, stored["investigations"] - expected_invest)
    )
    figures["lost"] = lost
    figures["duplicated"] = duplicated
    figures["ok"] = lost == 0 and duplicated == 0 and ok_requests == len(bodies)
    print(
        f"{ok_requests}/{len(bodies)} deliveries accepted in {seconds:.2f}s: "
        f"{figures['accepted_per_second']} alerts/s, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
        f"(max {figures['max_ms']} ms), server CPU {figures['server_cpu_ms_per_request']} ms/alert "
        f"(+ worker processes {figures['workers_cpu_ms_per_request']}) "
        f"[{figures['database']}, {args.clients} clients, "
        f"{f'offered {args.rate:g}/s' if args.rate else 'closed loop'}, level {args.level}; "
        f"load average {load_before} -> {load_after}]"
    )
    print(
        f"alerts stored {stored['alerts']}/{n_unique}, duplicates recognised {tally.duplicates}/"
        f"{len(bodies) - n_unique}, incidents {stored['incidents']}/{n_groups}, "
        f"automatic investigations {stored['investigations']}/{expected_invest}; lost {lost}, duplicated {duplicated}"
    )
    for err in tally.errors:
        print("error:", err)
    return figures


def clear_database(url: str) -> None:
    """Drop what a run stored in a PostgreSQL database, so the next run starts empty."""
    from sqlalchemy import create_engine, text

    from opsagent.store.db import _normalise_url

    engine = create_engine(_normalise_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_storm", description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--groups", type=int, default=450)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: SQLite in a temporary data dir; a PostgreSQL database given here is emptied after each run",
    )
    parser.add_argument("--level", default="L1", help="autonomy level of the server (L0: record only)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered load in alerts/s (default: closed loop, as fast as possible)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh server and database")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv or [])

    runs = [run_once(args) for _ in range(max(1, args.repeat))]
    if len(runs) > 1:

        def span(key: str) -> str:
            values = [float(str(r[key])) for r in runs]
            return f"{min(values):g}-{max(values):g}"

        print(
            f"{len(runs)} runs: {span('accepted_per_second')} alerts/s, p50 {span('p50_ms')} ms, "
            f"p99 {span('p99_ms')} ms, server CPU {span('server_cpu_ms_per_request')} ms/alert"
        )
    met = all(float(str(r["accepted_per_second"])) >= 500 and float(str(r["p99_ms"])) < 50 for r in runs)
    print(f"targets (>= 500 alerts/s, p99 < 50 ms): {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(runs if len(runs) > 1 else runs[0], indent=2) + "\n")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Bring the lab up and down: every part is a plain process whose PID is written under ``.lab/run/``.

``up`` starts, in order: PostgreSQL and Redis (the shop's own, on the lab's ports), the seven shop
services, nginx, the five exporters, Prometheus, Alertmanager, ``opsagent serve`` and the load
generator; each is waited for until it answers. Parts already running are left alone, so ``up`` also
repairs a half-started lab. ``down`` stops them in reverse order, each by its PID (SIGTERM, then
SIGKILL after a grace period); PostgreSQL is stopped through its postmaster PID like the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

import httpx

from lab import layout

CONF_SRC = Path(__file__).resolve().parent / "conf"
PG_BIN = Path(os.environ.get("LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
PYTHON = os.environ.get("LAB_PYTHON", sys.executable)
# Which opsagent the lab runs: "head" (default) a snapshot of the last commit, taken by `up`, so that
# edits in progress in the working tree cannot break a running campaign; "copy" a snapshot of the
# working tree as it is; "keep" the snapshot already in the state folder (e.g. one copied from
# another lab, so that two labs run the same code); "tree" the working tree itself.
OPSAGENT_SOURCE = os.environ.get("LAB_OPSAGENT_SOURCE", "head")
LOAD_RATE = os.environ.get("LAB_LOAD_RATE", "4")
# Where PostgreSQL's data goes when the state folder is closed to the postgres user (see pg_dir).
PG_OUTSIDE_ROOT = Path(os.environ.get("LAB_PG_OUTSIDE", "/var/tmp"))


def run_dir() -> Path:
    return layout.STATE / "run"


def conf_dir() -> Path:
    return layout.STATE / "conf"


def pg_dir() -> Path:
    """The lab's PostgreSQL data folder.

    PostgreSQL runs as its own user, which must be able to walk down to its data folder. Under the
    state folder when every folder above it is open to others; otherwise (a clone in a ``mktemp -d``
    folder, mode 0700) in a folder under /var/tmp named after the state folder, so that ``up`` and
    ``down`` of one lab always agree on it and two labs never share it.
    """
    inside = layout.STATE / "pg"
    if os.geteuid() != 0 or _reachable_by_others(layout.STATE):
        return inside
    digest = hashlib.sha256(str(layout.STATE.resolve()).encode()).hexdigest()[:12]
    return PG_OUTSIDE_ROOT / f"opsagent-lab-{digest}" / "pg"


def _reachable_by_others(path: Path) -> bool:
    """True when every existing folder from / down to ``path`` lets other users pass (o+x)."""
    here = path.resolve()
    for folder in [here, *here.parents]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def purge_pg_outside() -> None:
    """Remove a data folder kept outside the state folder (the state folder itself is the caller's)."""
    data = pg_dir()
    if postgres_pid() is None and not data.is_relative_to(layout.STATE):
        shutil.rmtree(data.parent, ignore_errors=True)


def secret(name: str) -> str:
    """A token the lab generates once and keeps in its state folder (never committed)."""
    path = layout.STATE / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def values() -> dict[str, str]:
    ports = {
        name: str(getattr(layout, name))
        for name in (
            "NGINX",
            "NGINX_STATUS",
            "POSTGRES",
            "REDIS",
            "NODE_EXPORTER",
            "PROCESS_EXPORTER",
            "POSTGRES_EXPORTER",
            "REDIS_EXPORTER",
            "NGINX_EXPORTER",
            "PROMETHEUS",
            "ALERTMANAGER",
            "OPSAGENT",
        )
    }
    targets = "\n".join(
        f'      - {{targets: ["{layout.HOST}:{s.port}"], labels: {{service: {s.name}}}}}'
        for s in layout.SERVICES
    )
    return {
        **ports,
        "STATE": str(layout.STATE),
        "ROOT": str(layout.ROOT),
        "STATE_RE": re.escape(str(layout.STATE)),
        "RULES": str(CONF_SRC / "rules.yml"),
        "SHOP_TARGETS": targets,
        "FRONTEND": str(layout.BY_NAME["frontend"].port),
        "WEBHOOK_TOKEN": secret("webhook-token"),
        "API_TOKEN": secret("api-token"),
        # Alertmanager's grouping (LAB_GROUP_BY, comma-separated): one incident per outage of the shop
        # by default; "system,alertname" gives one per alert name, so some faults open new incidents
        # and others reopen earlier ones.
        "GROUP_BY": ", ".join(
            p.strip() for p in os.environ.get("LAB_GROUP_BY", "system").split(",") if p.strip()
        ),
    }


def render() -> None:
    """Fill the templates in lab/conf/ into .lab/conf/ (only $NAME fields the lab defines)."""
    conf_dir().mkdir(parents=True, exist_ok=True)
    fields = values()
    for name in ("prometheus.yml", "alertmanager.yml", "nginx.conf", "opsagent.yaml", "process-exporter.yml"):
        text = Template((CONF_SRC / name).read_text(encoding="utf-8")).safe_substitute(fields)
        left = [m for m in re.findall(r"\$([A-Z_]{3,})", text) if m not in fields]
        if left:
            raise SystemExit(f"lab/conf/{name}: no value for {', '.join(sorted(set(left)))}")
        (conf_dir() / name).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Part:
    name: str
    command: Callable[[], list[str]]
    ready: Callable[[], bool]
    env: Callable[[], dict[str, str]] | None = None
    nice: int = 0
    cwd: Callable[[], Path] | None = None


def pid_file(name: str) -> Path:
    return run_dir() / f"{name}.pid"


def read_pid(name: str) -> int | None:
    try:
        pid = int(pid_file(name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def seconds_since_start(names: list[str]) -> float:
    """Seconds since the newest of these running parts was spawned (infinite when none runs)."""
    started = [pid_file(name).stat().st_mtime for name in names if read_pid(name) is not None]
    return time.time() - max(started) if started else math.inf


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((layout.HOST, port))
        except OSError:
            return False
    return True


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def port_holder(port: int) -> str:
    """Who holds a port that cannot be bound, in words for the message that refuses to start.

    Not always a server: the kernel gives outgoing connections a local port from its ephemeral range
    (32768-60999 by default). The lab's default ports lie below it, but a ``LAB_BASE_PORT`` inside it
    can meet a client of any process (another lab's opsagent talking to its PostgreSQL) sitting on one
    until that connection closes.
    """
    with socket.socket() as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((layout.HOST, port)) == 0:
            return "a process the lab did not start listens on it"
    try:
        low, high = (int(x) for x in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return "an outgoing connection holds it as its local port"
    where = "inside" if low <= port <= high else "outside"
    return (
        f"an outgoing connection holds it as its local port ({where} the kernel's range for those,"
        f" {low}-{high})"
    )


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def tcp_ok(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((layout.HOST, port), timeout=1.0):
                return True
        except OSError:
            return False

    return check


def wait(check: Callable[[], bool], what: str, timeout: float = 60.0, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if pid is not None and not alive(pid):
            log = run_dir() / f"{what}.log"
            raise SystemExit(f"{what} exited while starting; see {log}{_tail(log)}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not become ready within {timeout:.0f}s; see {run_dir()}/{what}.log")
        time.sleep(0.2)


def _tail(log: Path, lines: int = 12) -> str:
    """The end of a part's log, for the message that says it failed: whoever reads that message
    (a CI run that deletes the lab's state afterwards) may never see the file itself."""
    try:
        text = log.read_text(errors="replace").rstrip().splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  | {line}" for line in text) if text else ""


def spawn(part: Part) -> int:
    run_dir().mkdir(parents=True, exist_ok=True)
    log = (run_dir() / f"{part.name}.log").open("ab")
    env = {**os.environ, **(part.env() if part.env else {})}
    command = part.command()
    if part.nice:
        command = ["nice", "-n", str(part.nice), *command]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=part.cwd() if part.cwd else layout.ROOT,
        env=env,
        start_new_session=True,  # its own process group, so it outlives `make` and stops on its own
    )
    pid_file(part.name).write_text(str(proc.pid))
    return proc.pid


def stop_pid(pid: int, name: str, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        print(f"  {name} ({pid}) ignored {signal.Signals(sig).name}: SIGKILL", flush=True)
        os.kill(pid, signal.SIGKILL)
    # Reap it if it was our child (a fault restarting Redis or PostgreSQL from this process).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# ---------------------------------------------------------------------------------------------------
# PostgreSQL (refuses to run as root: its files belong to the postgres user, and it runs as that user)


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def postgres_pid() -> int | None:
    try:
        pid = int((pg_dir() / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def start_postgres() -> None:
    if postgres_pid() is not None:
        return
    data = pg_dir()
    fresh = not (data / "PG_VERSION").exists()
    if fresh:
        data.mkdir(parents=True, exist_ok=True)
        if not data.is_relative_to(layout.STATE):
            # made under root's umask, which may close it (077): the postgres user must pass through
            data.parent.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        data.chmod(0o700)
        subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if not port_free(layout.POSTGRES):
        raise SystemExit(f"port {layout.POSTGRES} is taken: cannot start the lab's PostgreSQL")
    options = (
        f"-p {layout.POSTGRES} -k {data} -c listen_addresses={layout.HOST} -c shared_buffers=32MB "
        "-c max_connections=60 -c fsync=off -c synchronous_commit=off -c log_min_duration_statement=1000"
    )
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(data / "server.log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    pid = postgres_pid()
    assert pid is not None
    pid_file("postgres").write_text(str(pid))
    if fresh:
        psql = [
            str(PG_BIN.parent / "bin" / "psql"),
            "-h",
            layout.HOST,
            "-p",
            str(layout.POSTGRES),
            "-U",
            "postgres",
        ]
        psql = psql if Path(psql[0]).exists() else ["psql", *psql[1:]]
        subprocess.run([*psql, "-q", "-c", f"CREATE ROLE {layout.DB_USER} LOGIN"], check=True)
        subprocess.run(
            [*psql, "-q", "-c", f"CREATE DATABASE {layout.DB_NAME} OWNER {layout.DB_USER}"], check=True
        )
        subprocess.run(
            [*psql[:-1], layout.DB_USER, "-d", layout.DB_NAME, "-q", "-f", str(CONF_SRC / "schema.sql")],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def stop_postgres() -> None:
    pid = postgres_pid()
    if pid is not None:
        stop_pid(pid, "postgres", signal.SIGINT, grace=30.0)  # SIGINT: PostgreSQL's "fast" shutdown
    pid_file("postgres").unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# The parts, in start order


def _service(name: str) -> Part:
    port = layout.BY_NAME[name].port
    return Part(
        name,
        # The state folder on the command line tells this lab's processes from another lab's.
        lambda: [PYTHON, "-m", "lab.shop.service", name, "--state", str(layout.STATE)],
        http_ok(f"http://{layout.HOST}:{port}/healthz"),
    )


def opsagent_home() -> Path:
    """The folder opsagent runs in (its runbooks/ and prompts/ are read from there)."""
    return layout.STATE / "opsagent-src" if OPSAGENT_SOURCE in ("head", "copy", "keep") else layout.ROOT


def snapshot_opsagent() -> None:
    """Copy src/, prompts/, runbooks/ and scripts/ of the newest commit whose service imports into .lab/opsagent-src/.

    Several people commit to main at once; a commit that is half of a refactor must not stop the lab,
    so up to ``LAB_OPSAGENT_LOOKBACK`` commits are tried, newest first. The one taken is written to
    ``COMMIT`` there and into every campaign report.
    """
    if OPSAGENT_SOURCE == "copy":
        _copy_tree()
        return
    if OPSAGENT_SOURCE == "keep":
        if not (opsagent_home() / "src" / "opsagent").is_dir():
            raise SystemExit(f"LAB_OPSAGENT_SOURCE=keep: no snapshot in {opsagent_home()}")
        return
    if OPSAGENT_SOURCE != "head":
        return
    home = opsagent_home()
    commits = subprocess.run(
        ["git", "rev-list", "-n", os.environ.get("LAB_OPSAGENT_LOOKBACK", "15"), "HEAD"],
        cwd=layout.ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for commit in commits:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit, "src", "prompts", "runbooks", "scripts"],
            cwd=layout.ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(home)], input=archive, check=True)
        check = subprocess.run(
            [
                PYTHON,
                "-c",
                "import opsagent.cli, opsagent.api.app, opsagent.commands.record, opsagent.commands.eval",
            ],
            cwd=home,
            env={**os.environ, "PYTHONPATH": str(home / "src")},
            capture_output=True,
        )
        if check.returncode == 0:
            (home / "COMMIT").write_text(commit + "\n")
            if commit != commits[0]:
                print(f"  opsagent: HEAD does not import; running {commit[:10]}", flush=True)
            return
    raise SystemExit(f"none of the last {len(commits)} commits has an opsagent that imports")


def _copy_tree() -> None:
    home = opsagent_home()
    shutil.rmtree(home, ignore_errors=True)
    for name in ("src", "prompts", "runbooks", "scripts"):
        shutil.copytree(
            layout.ROOT / name, home / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=layout.ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    (home / "COMMIT").write_text(f"{head} + working tree\n")


def opsagent_commit() -> str | None:
    path = opsagent_home() / "COMMIT"
    return path.read_text().strip() if path.exists() else None


def opsagent_env() -> dict[str, str]:
    env = {"OPSAGENT_CONFIG_FILE": str(conf_dir() / "opsagent.yaml")}
    if OPSAGENT_SOURCE in ("head", "copy", "keep"):
        env["PYTHONPATH"] = str(opsagent_home() / "src")
    return env


def opsagent_command(*args: str) -> list[str]:
    return [PYTHON, "-m", "opsagent.cli", *args]


def parts() -> list[Part]:
    h = layout.HOST
    conf = conf_dir()
    return [
        Part(
            "redis",
            lambda: [
                "redis-server",
                "--port",
                str(layout.REDIS),
                "--bind",
                h,
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory",
                "64mb",
                "--maxmemory-policy",
                "allkeys-lru",
                "--dir",
                str(run_dir()),
            ],
            tcp_ok(layout.REDIS),
        ),
        *(_service(s.name) for s in layout.SERVICES),
        Part(
            "nginx",
            lambda: ["nginx", "-c", str(conf / "nginx.conf"), "-p", str(layout.STATE / "nginx")],
            http_ok(f"http://{h}:{layout.NGINX_STATUS}/stub_status"),
        ),
        Part(
            "node-exporter",
            lambda: [
                "prometheus-node-exporter",
                f"--web.listen-address={h}:{layout.NODE_EXPORTER}",
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.loadavg",
                "--collector.netdev",
                "--collector.diskstats",
                "--collector.filesystem",
                "--collector.pressure",
            ],
            http_ok(f"http://{h}:{layout.NODE_EXPORTER}/metrics"),
        ),
        Part(
            "process-exporter",
            lambda: [
                "prometheus-process-exporter",
                "-config.path",
                str(conf / "process-exporter.yml"),
                "-web.listen-address",
                f"{h}:{layout.PROCESS_EXPORTER}",
                "-threads=false",
                "-gather-smaps=false",
            ],
            http_ok(f"http://{h}:{layout.PROCESS_EXPORTER}/metrics"),
        ),
        Part(
            "postgres-exporter",
            lambda: [
                "prometheus-postgres-exporter",
                f"--web.listen-address={h}:{layout.POSTGRES_EXPORTER}",
                "--disable-settings-metrics",
            ],
            http_ok(f"http://{h}:{layout.POSTGRES_EXPORTER}/metrics"),
            env=lambda: {
                "DATA_SOURCE_NAME": f"postgresql://{layout.DB_USER}@{h}:{layout.POSTGRES}/{layout.DB_NAME}?sslmode=disable"
            },
        ),
        Part(
            "redis-exporter",
            lambda: [
                "prometheus-redis-exporter",
                "-redis.addr",
                f"redis://{h}:{layout.REDIS}",
                "-web.listen-address",
                f"{h}:{layout.REDIS_EXPORTER}",
            ],
            http_ok(f"http://{h}:{layout.REDIS_EXPORTER}/metrics"),
        ),
        Part(
            "nginx-exporter",
            lambda: [
                "prometheus-nginx-exporter",
                "-nginx.scrape-uri",
                f"http://{h}:{layout.NGINX_STATUS}/stub_status",
                "-web.listen-address",
                f"{h}:{layout.NGINX_EXPORTER}",
            ],
            http_ok(f"http://{h}:{layout.NGINX_EXPORTER}/metrics"),
        ),
        Part(
            "prometheus",
            lambda: [
                "prometheus",
                f"--config.file={conf / 'prometheus.yml'}",
                f"--storage.tsdb.path={layout.STATE / 'prometheus'}",
                f"--web.listen-address={h}:{layout.PROMETHEUS}",
                "--storage.tsdb.retention.time=1d",
            ],
            http_ok(f"http://{h}:{layout.PROMETHEUS}/-/ready"),
        ),
        Part(
            "alertmanager",
            lambda: [
                "prometheus-alertmanager",
                f"--config.file={conf / 'alertmanager.yml'}",
                f"--storage.path={layout.STATE / 'alertmanager'}",
                f"--web.listen-address={h}:{layout.ALERTMANAGER}",
                "--cluster.listen-address=",
            ],
            http_ok(f"http://{h}:{layout.ALERTMANAGER}/-/ready"),
        ),
        Part(
            "opsagent",
            lambda: opsagent_command(
                "serve", "--host", h, "--port", str(layout.OPSAGENT), "--log-level", "warning"
            ),
            http_ok(f"http://{h}:{layout.OPSAGENT}/healthz"),
            env=opsagent_env,
            cwd=opsagent_home,
        ),
        Part("loadgen", lambda: [PYTHON, "-m", "lab.shop.loadgen", LOAD_RATE], lambda: True, nice=5),
    ]


PORTS = {
    "redis": layout.REDIS,
    "nginx": layout.NGINX,
    "node-exporter": layout.NODE_EXPORTER,
    "process-exporter": layout.PROCESS_EXPORTER,
    "postgres-exporter": layout.POSTGRES_EXPORTER,
    "redis-exporter": layout.REDIS_EXPORTER,
    "nginx-exporter": layout.NGINX_EXPORTER,
    "prometheus": layout.PROMETHEUS,
    "alertmanager": layout.ALERTMANAGER,
    "opsagent": layout.OPSAGENT,
    **{s.name: s.port for s in layout.SERVICES},
}


def start_part(part: Part) -> None:
    if read_pid(part.name) is not None:
        return
    port = PORTS.get(part.name)
    # A process that was just stopped can hold its port a little longer: its main thread is gone
    # (so it no longer counts as alive) while other threads still unwind, e.g. freeing a leak.
    deadline = time.monotonic() + 20.0
    while port is not None and not port_free(port) and time.monotonic() < deadline:
        time.sleep(0.25)
    if port is not None and not port_free(port):
        raise SystemExit(
            f"port {port} for {part.name} is taken: {port_holder(port)}; wait for it to close,"
            f" or start this lab's ports elsewhere with LAB_BASE_PORT (now {layout.BASE_PORT})"
        )
    if part.name == "opsagent":
        snapshot_opsagent()
    if part.name == "nginx":
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (layout.STATE / "nginx" / sub).mkdir(parents=True, exist_ok=True)
    pid = spawn(part)
    wait(part.ready, part.name, pid=pid)


def up(quiet: bool = False) -> None:
    started = time.monotonic()
    layout.STATE.mkdir(parents=True, exist_ok=True)
    run_dir().mkdir(parents=True, exist_ok=True)
    render()
    # Parts already running read the configuration just rendered (both reload on SIGHUP).
    for name in ("prometheus", "alertmanager"):
        pid = read_pid(name)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
    start_postgres()
    for part in parts():
        start_part(part)
    if not quiet:
        print(
            f"lab up in {time.monotonic() - started:.0f}s: shop at http://{layout.HOST}:{layout.NGINX}/, "
            f"Prometheus http://{layout.HOST}:{layout.PROMETHEUS}/, Alertmanager "
            f"http://{layout.HOST}:{layout.ALERTMANAGER}/, opsagent http://{layout.HOST}:{layout.OPSAGENT}/"
        )


def restart(name: str) -> None:
    part = next((p for p in parts() if p.name == name), None)
    if part is None:
        raise SystemExit(f"no part {name!r} (expected one of {', '.join(p.name for p in parts())})")
    pid = read_pid(name)
    if pid is not None:
        stop_pid(pid, name)
    start_part(part)
    print(f"{name} restarted (pid {read_pid(name)})")


def is_up() -> bool:
    return postgres_pid() is not None and all(read_pid(p.name) is not None for p in parts())


def down() -> None:
    # Faults first: a service told to misbehave, or a dependency a fault stopped, is put right.
    from lab import inject

    inject.clear_all()
    for part in reversed(parts()):
        pid = read_pid(part.name)
        if pid is not None:
            stop_pid(pid, part.name)
        pid_file(part.name).unlink(missing_ok=True)
    stop_postgres()
    print("lab down")


def status() -> list[tuple[str, int | None]]:
    rows: list[tuple[str, int | None]] = [("postgres", postgres_pid())]
    rows += [(p.name, read_pid(p.name)) for p in parts()]
    return rows

"""Fixtures for the service tests: a real PostgreSQL database and Redis keys of our own, servers on
free loopback ports (uvicorn in a thread, or a subprocess that a test may kill), real Alertmanager."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from opsagent.api import create_app
from opsagent.config import Settings
from opsagent.evidence.base import EvidenceSource

from ..support import servers

# Re-exported: the tests here import them from this conftest.
from ..support.servers import free_port
from ..support.servers import wait_until as wait_until

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "alertmanager"
WEBHOOK_TOKEN = "test-webhook-token"
TOKENS = {"admin": "test-admin-token", "responder": "test-responder-token", "viewer": "test-viewer-token"}
PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def fixture_payload(name: str = "01-firing-HighErrorRate.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """OPSAGENT_* settings for a server subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env.update(
        OPSAGENT_DATA_DIR=str(data_dir),
        OPSAGENT_RUNBOOKS_DIR=str(ROOT / "runbooks"),
        OPSAGENT_EMBEDDING="hashing",
        OPSAGENT_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        OPSAGENT_API_TOKENS=json.dumps([{"name": r, "token": t, "role": r} for r, t in TOKENS.items()]),
    )
    env.update(extra)
    return env


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "runbooks_dir": ROOT / "runbooks",
            "embedding": "hashing",
            "webhook_token": WEBHOOK_TOKEN,
            "api_tokens": [{"name": r, "token": t, "role": r} for r, t in TOKENS.items()],
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of our own on the local server, dropped afterwards."""
    import psycopg

    name = f"opsagent_api_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def fresh_pg(pg_url: str) -> Iterator[str]:
    """The session database, emptied before the test."""
    import psycopg

    conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Our own database: start every test from an empty schema, whatever tables other modules add.
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    yield pg_url


def clean_rq(conn: Any, name: str) -> None:
    """Delete what rq stored for queue ``name`` and its workers (all named after it), nothing else."""
    keys = set(conn.scan_iter(match=f"*{name}*", count=1000))
    for key in conn.scan_iter(match="rq:job:*", count=1000):
        with contextlib.suppress(Exception):
            if conn.hget(key, "origin") == name.encode():
                keys.add(key)
    for key in conn.scan_iter(match="rq:execution:*", count=1000):
        with contextlib.suppress(Exception):
            if name.encode() in (conn.hget(key, "worker_name") or b""):
                keys.add(key)
                keys.add(b"rq:executions:" + conn.hget(key, "job_id"))
    if keys:
        conn.delete(*keys)
    for registry in ("rq:queues", "rq:workers"):
        mine = [m for m in conn.smembers(registry) if name.encode() in m]
        if mine:
            conn.srem(registry, *mine)


@pytest.fixture
def redis_queue() -> Iterator[tuple[str, str]]:
    """(redis URL, queue name): a queue of our own; every key naming it is deleted afterwards."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    conn = redis.Redis.from_url(url)
    try:
        conn.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at 127.0.0.1:6379: {exc}")
    name = f"opsagent-test-{uuid.uuid4().hex[:10]}"
    try:
        yield url, name
    finally:
        clean_rq(conn, name)
        conn.close()


class LiveServer:
    """``create_app`` under uvicorn in a thread on a free port."""

    def __init__(self, settings: Settings, sources: list[EvidenceSource] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, sources=sources)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def start(settings: Settings, sources: list[EvidenceSource] | None = None) -> LiveServer:
        server = LiveServer(settings, sources).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


class Proc:
    """A helper script (tests/api/_run.py) in its own process, so a test can SIGKILL it."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "_run.py"), *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self._out.close()

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


@pytest.fixture
def procs() -> Iterator[Callable[[list[str], dict[str, str], Path], Proc]]:
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> Proc:
        proc = Proc(args, env, log)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def wait_http(url: str, timeout: float = 60.0, proc: Proc | None = None) -> None:
    servers.wait_http(url, timeout, proc=proc.popen if proc else None, log=proc.log if proc else None)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """Start a real Alertmanager whose webhook receiver posts to ``target`` with ``token``; returns its URL."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (bash scripts/install-system-deps.sh)")
    running: list[subprocess.Popen[bytes]] = []

    def start(target: str, token: str) -> str:
        port = free_port()
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: opsagent\n"
            "  group_by: [alertname, service]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: opsagent\n"
            "    webhook_configs:\n"
            f"      - url: {target}\n"
            "        send_resolved: true\n"
            "        http_config:\n"
            "          authorization:\n"
            "            type: Bearer\n"
            f"            credentials: {token}\n"
        )
        log = (tmp_path / "alertmanager.log").open("wb")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", timeout=30)
        return url

    yield start
    for proc in running:
        servers.stop(proc)

"""Real local servers for the autonomy tests.

``Target`` is one HTTP server that plays every system an action can touch: the automation endpoint
the http executor POSTs to (``/hooks/<action>``), a Kubernetes API server for the official client
(``/apis/...``, ``/api/v1/...``), and a ``/metrics`` page Prometheus scrapes for verification. It records
every call it receives, so tests assert on what actually ran, not on what the runner says it ran.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support.servers import free_port, stop, wait_http

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Target:
    url: str
    calls: list[Call] = field(default_factory=list)
    # Deployment state served to the Kubernetes client: name -> object.
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    # Gauges on /metrics, as full sample lines without the value -> value.
    gauges: dict[str, float] = field(default_factory=dict)
    # Counters on /metrics: sample -> increase per scrape.
    counters: dict[str, float] = field(default_factory=dict)
    counter_values: dict[str, float] = field(default_factory=dict)
    # Called with each automation/k8s write before it is answered (e.g. to flip a kill switch).
    on_write: Callable[[Call], None] | None = None
    hook_status: int = 200
    hook_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests_counter: int = 0

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH", "DELETE", "PUT")]

    def ran(self) -> list[str]:
        """Which actions actually reached a system, in order (automation hooks and Kubernetes writes)."""
        out: list[str] = []
        for call in self.writes():
            if call.path.startswith("/hooks/"):
                out.append(call.path.removeprefix("/hooks/"))
            elif call.method == "PATCH" and call.path.endswith("/scale"):
                out.append("scale-deployment")
            elif call.method == "PATCH" and "/deployments/" in call.path:
                body = call.body
                if isinstance(body, list):
                    out.append("rollback-deployment")
                else:
                    out.append("restart-deployment")
            else:
                out.append(f"{call.method} {call.path}")
        return out


def _deployment(name: str, namespace: str, replicas: int = 4, revision: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": f"shop/{name}:v{revision}"}]},
            },
        },
        "status": {"replicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas},
    }


def _replicaset(dep: dict[str, Any], revision: int) -> dict[str, Any]:
    name = dep["metadata"]["name"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-rev{revision}",
            "namespace": dep["metadata"]["namespace"],
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": dep["metadata"]["uid"]}
            ],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "pod-template-hash": f"h{revision}"}},
                "spec": {"containers": [{"name": name, "image": f"shop/{name}:v{revision}"}]},
            },
        },
    }


def add_deployment(target: Target, name: str, namespace: str = "shop", replicas: int = 4) -> None:
    dep = _deployment(name, namespace, replicas)
    target.deployments[name] = dep
    target.replicasets.extend(_replicaset(dep, rev) for rev in (1, 2, 3))


def _handler(target: Target) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Call:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with target.lock:
                target.calls.append(call)
            return call

        def do_GET(self) -> None:
            call = self._record()
            path = call.path.split("?")[0]
            if path == "/metrics":
                with target.lock:
                    target.requests_counter += 100
                    lines = [f"{k} {v}" for k, v in target.gauges.items()]
                    for name, step in target.counters.items():
                        target.counter_values[name] = target.counter_values.get(name, 0.0) + step
                        lines.append(f"{name} {target.counter_values[name]}")
                    lines.append(f"demo_requests_total {target.requests_counter}")
                self._send(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
                return
            parts = path.strip("/").split("/")
            # /apis/apps/v1/namespaces/{ns}/deployments/{name}
            if len(parts) == 7 and parts[:3] == ["apis", "apps", "v1"] and parts[5] == "deployments":
                dep = target.deployments.get(parts[6])
                if dep is None:
                    self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                else:
                    self._send(200, dep)
                return
            if len(parts) == 6 and parts[:3] == ["apis", "apps", "v1"] and parts[5] == "replicasets":
                self._send(
                    200,
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSetList",
                        "metadata": {},
                        "items": target.replicasets,
                    },
                )
                return
            self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

        def _write(self) -> None:
            call = self._record()
            if target.on_write is not None:
                target.on_write(call)
            path = call.path.split("?")[0]
            if path.startswith("/hooks/"):
                if target.hook_delay:
                    time.sleep(target.hook_delay)
                self._send(target.hook_status, {"job": len(target.calls), "status": "started"})
                return
            parts = path.strip("/").split("/")
            if parts[:3] == ["apis", "apps", "v1"] and len(parts) >= 7 and parts[5] == "deployments":
                dep = target.deployments.get(parts[6])
                if dep is None:
                    self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                if len(parts) == 8 and parts[7] == "scale":
                    self._send(
                        200,
                        {
                            "apiVersion": "autoscaling/v1",
                            "kind": "Scale",
                            "metadata": {"name": parts[6]},
                            "spec": {"replicas": call.body["spec"]["replicas"]},
                            "status": {"replicas": 1},
                        },
                    )
                    return
                self._send(200, dep)
                return
            if parts[:2] == ["api", "v1"] and "pods" in parts:
                self._send(200, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": parts[-1]}})
                return
            if parts[:2] == ["api", "v1"] and parts[2] == "nodes":
                self._send(200, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": parts[3]}})
                return
            self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

        def do_POST(self) -> None:
            self._write()

        def do_PATCH(self) -> None:
            self._write()

        def do_DELETE(self) -> None:
            self._write()

        def do_PUT(self) -> None:
            self._write()

    return Handler


@pytest.fixture
def target() -> Iterator[Target]:
    port = free_port()
    tgt = Target(url=f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(tgt))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tgt
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Prometheus:
    url: str

    def wait_for(self, query: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
            if body.get("data", {}).get("result"):
                return
            time.sleep(0.3)
        raise AssertionError(f"Prometheus never returned data for {query}")


@pytest.fixture
def prometheus(target: Target, tmp_path: Path) -> Iterator[Prometheus]:
    """A real Prometheus scraping the target's /metrics every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        subprocess.run(["bash", str(REPO / "scripts/install-system-deps.sh")], check=False)
        binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (bash scripts/install-system-deps.sh)")
    host = target.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: target\n    static_configs: [{{targets: ['{host}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", 20, proc=proc, interval=0.2)
        yield Prometheus(url)
    finally:
        stop(proc)

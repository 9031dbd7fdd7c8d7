"""A live system for the live-path tests: toy services (``toy_service.py``), a real Prometheus
scraping them every second and evaluating alert rules, and a real Alertmanager.

Everything listens on free loopback ports and is stopped by ``close()``. Time is compressed, not
faked: a one-second scrape and rates over 10 s stand in for the usual 15 s and 1 min.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .servers import free_port, stop, wait_http, wait_until

TOY = Path(__file__).with_name("toy_service.py")


def fast_catalogue() -> dict[str, str]:
    """The shipped prometheus-client catalogue with rates over 10 s instead of 1 min (one-second scrape)."""
    from opsagent.config import PROMETHEUS_CLIENT_SIGNALS

    return {name: q.replace("[1m]", "[10s]") for name, q in PROMETHEUS_CLIENT_SIGNALS.items()}


# Alert rules on the same conventions, short `for:` so that a test does not wait minutes.
RULES = """groups:
  - name: toy
    rules:
      - alert: HighErrorRate
        expr: sum by (service) (rate(http_requests_total{code=~"5.."}[10s])) / sum by (service) (rate(http_requests_total[10s])) > 0.2
        for: 3s
      - alert: HighLatency
        expr: histogram_quantile(0.9, sum by (service, le) (rate(http_request_duration_seconds_bucket[10s]))) > 0.2
        for: 3s
      - alert: ServiceDown
        expr: up == 0
        for: 3s
"""


@dataclass
class LiveSystem:
    base: Path
    calls: dict[str, list[str]]
    entry: str
    load: float = 20.0
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    prometheus: subprocess.Popen[bytes] | None = None
    prometheus_url: str = ""
    alertmanager: subprocess.Popen[bytes] | None = None
    alertmanager_url: str = ""
    started_at: float = 0.0

    @property
    def logs_dir(self) -> Path:
        return self.base / "logs"

    def start_services(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        names = list(dict.fromkeys([*self.calls, *(c for cs in self.calls.values() for c in cs)]))
        self.ports = {name: free_port() for name in names}
        # Callees first, so the entry's first calls find them up.
        for name in reversed(names):
            peers = ",".join(f"{p}={self.ports[p]}" for p in self.calls.get(name, []))
            cmd = [
                sys.executable,
                str(TOY),
                name,
                str(self.ports[name]),
                str(self.logs_dir / f"{name}.jsonl"),
            ]
            if peers:
                cmd += ["--calls", peers]
            if name == self.entry:
                cmd += ["--load", str(self.load)]
            self.procs[name] = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=(self.base / f"{name}.err").open("wb")
            )
            wait_http(f"http://127.0.0.1:{self.ports[name]}/metrics", 30, proc=self.procs[name])
        self.started_at = time.time()

    def start_alertmanager(
        self,
        webhook: str,
        token: str,
        group_by: tuple[str, ...] | list[str] = ("alertname", "service"),
        port: int | None = None,
    ) -> str:
        """Alertmanager posting to ``webhook`` (on ``port``, chosen beforehand when Prometheus must know it)."""
        binary = shutil.which("prometheus-alertmanager")
        assert binary, "prometheus-alertmanager missing: run `bash scripts/install-system-deps.sh`"
        port = port or free_port()
        config = self.base / "alertmanager.yml"
        config.write_text(
            f"route:\n  receiver: opsagent\n  group_by: [{', '.join(group_by)}]\n  group_wait: 1s\n"
            "  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: opsagent\n"
            f"    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
            "        http_config:\n          authorization:\n            type: Bearer\n"
            f"            credentials: {token}\n"
        )
        self.alertmanager = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={self.base / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "alertmanager.log").open("wb"),
        )
        self.alertmanager_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.alertmanager_url}/-/ready", 30, proc=self.alertmanager)
        return self.alertmanager_url

    def start_prometheus(self, rules: str | None = None, alertmanager: str | None = None) -> str:
        """Prometheus scraping every service each second; alerts go to ``alertmanager`` (or the one started)."""
        assert shutil.which("prometheus"), "prometheus missing: run `bash scripts/install-system-deps.sh`"
        port = free_port()
        lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s"]
        if rules is not None:
            (self.base / "rules.yml").write_text(rules)
            lines += ["rule_files:", f"  - {self.base / 'rules.yml'}"]
        if alertmanager or self.alertmanager_url:
            target = (alertmanager or self.alertmanager_url).removeprefix("http://")
            lines += [
                "alerting:",
                "  alertmanagers:",
                "    - static_configs:",
                f"        - targets: ['{target}']",
            ]
        lines.append("scrape_configs:")
        for name, svc_port in self.ports.items():
            lines += [
                f"  - job_name: {name}",
                "    static_configs:",
                f"      - targets: ['127.0.0.1:{svc_port}']",
                f"        labels: {{service: {name}}}",
            ]
        config = self.base / "prometheus.yml"
        config.write_text("\n".join(lines) + "\n")
        self.prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.base / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "prometheus.log").open("wb"),
        )
        self.prometheus_url = f"http://127.0.0.1:{port}"
        wait_http(
            f"{self.prometheus_url}/-/ready", 30, proc=self.prometheus, log=self.base / "prometheus.log"
        )
        return self.prometheus_url

    def fault(self, service: str, kind: str) -> None:
        httpx.get(f"http://127.0.0.1:{self.ports[service]}/fault/{kind}", timeout=5).raise_for_status()

    def kill(self, service: str) -> None:
        proc = self.procs[service]
        proc.kill()
        proc.wait(timeout=10)

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10).json()
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_scraped(self, seconds: float = 30.0) -> None:
        """Until every service has been scraped and serves requests."""
        wanted = len(self.ports)
        wait_until(
            lambda: len(self.query("sum by (job) (rate(http_requests_total[10s])) > 0")) == wanted,
            seconds,
            0.5,
            "every toy service scraped with traffic",
        )

    def close(self) -> None:
        for proc in [*self.procs.values(), self.prometheus, self.alertmanager]:
            if proc is not None and proc.poll() is None:
                stop(proc)


class OpsagentServer:
    """``create_app`` under uvicorn in a thread on a free port (what ``opsagent serve`` runs)."""

    def __init__(self, settings: Any, sources: list[Any] | None = None) -> None:
        import threading

        import uvicorn

        from opsagent.api import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, sources=sources)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 60, 0.05, "opsagent server")
        assert self.server.started, "the opsagent server did not start"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

"""A small real HTTP service instrumented with prometheus-client, for the live-path tests.

    python toy_service.py NAME PORT LOGFILE [--calls PEER=PORT,...] [--load RPS]

It serves ``/work`` (calling each peer's ``/work`` over HTTP first), ``/metrics`` (the prometheus-client
conventions: ``http_requests_total{code}``, ``http_request_duration_seconds``, ``process_*``, and
``http_client_requests_total{peer,code}`` for the calls it makes) and ``/fault/KIND`` (``latency``,
``errors``, ``cpu``, ``none``) to inject a fault. With ``--load`` it sends itself that many requests a
second, as the entry point of the system. Each request writes a JSON line to LOGFILE in the format
the file log source reads; a call to a peer that is down logs the refusal.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("http_requests_total", "Requests served", ["code"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to serve a request",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CALLS = Counter("http_client_requests_total", "Calls to other services", ["peer", "code"])

fault = {"kind": "none"}
log_lock = threading.Lock()


def write_log(path: str, service: str, level: str, message: str) -> None:
    line = json.dumps({"timestamp": time.time(), "service": service, "level": level, "message": message})
    with log_lock, Path(path).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def burn(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(20_000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("logfile")
    parser.add_argument("--calls", default="")
    parser.add_argument("--load", type=float, default=0.0)
    args = parser.parse_args()
    peers = dict(item.split("=") for item in args.calls.split(",") if item)
    cpu_stop = threading.Event()

    def call_peers() -> str | None:
        for peer, port in peers.items():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/work", timeout=2) as resp:
                    CALLS.labels(peer, str(resp.status)).inc()
            except urllib.error.HTTPError as exc:
                CALLS.labels(peer, str(exc.code)).inc()
                return f"call to {peer} failed with HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                CALLS.labels(peer, "0").inc()
                reason = getattr(exc, "reason", exc)
                return f"call to {peer} failed: {reason}"
        return None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: Any) -> None:
            return

        def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                return
            if self.path.startswith("/fault/"):
                kind = self.path.rsplit("/", 1)[1]
                fault["kind"] = kind
                cpu_stop.set()
                if kind == "cpu":
                    cpu_stop.clear()
                    for _ in range(2):
                        threading.Thread(target=burn, args=(cpu_stop,), daemon=True).start()
                self._send(200, kind.encode())
                return
            if self.path != "/work":
                self._send(404, b"no")
                return
            started = time.perf_counter()
            time.sleep(0.004 + random.random() * 0.004)
            if fault["kind"] == "latency":
                time.sleep(0.3)
            problem = call_peers()
            code = 200
            if problem is not None:
                code = 502
                write_log(args.logfile, args.name, "error", problem)
            elif fault["kind"] == "errors" and random.random() < 0.6:
                code = 500
                write_log(args.logfile, args.name, "error", "database query failed: deadlock detected")
            else:
                write_log(args.logfile, args.name, "info", "served /work")
            REQUESTS.labels(str(code)).inc()
            LATENCY.observe(time.perf_counter() - started)
            self._send(code, b"ok" if code == 200 else b"failed")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

    def load() -> None:
        interval = 2.0 / args.load  # two senders share the rate
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/work", timeout=5):
                    pass
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(interval)

    if args.load > 0:
        for _ in range(2):
            threading.Thread(target=load, daemon=True).start()
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

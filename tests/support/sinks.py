"""A webhook endpoint for notification tests: a real HTTP server on a free loopback port that records
the JSON bodies it receives and answers the statuses a test scripts (then 200), after an optional delay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .servers import free_port


@dataclass
class Sink:
    url: str
    bodies: list[Any] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    delay: float = 0.0


@contextmanager
def webhook_sink(path: str = "/hook") -> Iterator[Sink]:
    port = free_port()
    rec = Sink(url=f"http://127.0.0.1:{port}{path}")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec.bodies.append(json.loads(raw))
            if rec.delay:
                time.sleep(rec.delay)
            self.send_response(rec.script.pop(0) if rec.script else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""The Loki source against a local HTTP server speaking Loki's documented query_range API; file
logs; condensation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from opsagent.analysis.log_digest import condense
from opsagent.config import LokiSettings
from opsagent.domain import Alert, Incident, LogRecord, TimeWindow
from opsagent.errors import LogSourceError
from opsagent.evidence.base import collect
from opsagent.evidence.log_files import FileLogSource
from opsagent.evidence.loki import LokiSource

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class FakeLoki:
    """Answers /loki/api/v1/query_range like Loki does: streams with [ns-string, line] values."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.status = 200
        self.error_body = ""
        self.streams: list[dict[str, Any]] = []

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append((params, dict(handler.headers.items())))
        if url.path != "/loki/api/v1/query_range":
            self._send(handler, 404, "text/plain", b"404 page not found\n")
        elif self.status != 200:
            self._send(handler, self.status, "text/plain; charset=utf-8", self.error_body.encode())
        else:
            lo, hi, limit = int(params["start"]), int(params["end"]), int(params["limit"])
            result = []
            for stream in self.streams:
                values = [v for v in stream["values"] if lo <= int(v[0]) <= hi]
                values.sort(key=lambda v: -int(v[0]))  # direction=backward: newest first
                if values:
                    result.append({"stream": stream["stream"], "values": values[:limit]})
            body = {
                "status": "success",
                "data": {"resultType": "streams", "result": result, "stats": {"summary": {}}},
            }
            self._send(handler, 200, "application/json", json.dumps(body).encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, ctype: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def loki() -> Iterator[tuple[FakeLoki, str]]:
    fake = FakeLoki()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.respond(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def incident() -> Incident:
    alert = Alert(
        fingerprint="f1",
        name="HighErrorRate",
        labels={"alertname": "HighErrorRate", "service": "checkout", "namespace": "shop"},
        starts_at=T0 + timedelta(minutes=90),
    )
    return Incident(
        id="i1",
        title="t",
        alerts=[alert],
        namespace="shop",
        window=TimeWindow(start=T0, end=T0 + timedelta(hours=2)),
        alert_time=alert.starts_at,
    )


def ns(minutes: float) -> str:
    return str(int((T0 + timedelta(minutes=minutes)).timestamp() * 1e9))


def test_streams_become_records_with_service_and_level(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.streams = [
        {
            "stream": {"namespace": "shop", "app": "orders", "level": "error"},
            "values": [[ns(100), "timeout acquiring connection from pool"], [ns(10), "pool ok"]],
        },
        {
            "stream": {"namespace": "shop", "service": "checkout", "pod": "checkout-1"},
            "values": [
                [ns(95), '{"level":"warn","msg":"slow upstream orders","ms":950}'],
                [ns(96), 'ts=x level=error msg="PlaceOrder failed"'],
            ],
        },
    ]
    settings = LokiSettings(url=url, token=SecretStr("s3cret"), tenant="team-a", limit=100, slices=2)
    bundle = collect(incident(), [LokiSource(settings)])
    assert not bundle.gaps
    got = [(r.service, r.level, r.message) for r in bundle.logs]
    assert got == [
        ("orders", "error", "pool ok"),
        ("checkout", "warn", "slow upstream orders"),
        ("checkout", "error", 'ts=x level=error msg="PlaceOrder failed"'),
        ("orders", "error", "timeout acquiring connection from pool"),
    ]
    assert [r.timestamp for r in bundle.logs] == sorted(r.timestamp for r in bundle.logs)
    assert len(fake.requests) == 2  # one per slice
    params, headers = fake.requests[0]
    assert params["query"] == '{namespace=~"shop"}'
    assert params["limit"] == "50" and params["direction"] == "backward"
    assert int(params["start"]) == int(T0.timestamp() * 1e9)
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["X-Scope-OrgID"] == "team-a"


def test_a_query_template_is_filled_from_the_alert(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    settings = LokiSettings(url=url, query='{namespace="{namespace}", app=~"{service}|{pod}"}', slices=1)
    collect(incident(), [LokiSource(settings)])
    assert fake.requests[0][0]["query"] == '{namespace="shop", app=~"checkout|.+"}'
    assert "Authorization" not in fake.requests[0][1]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "parse error at line 1, col 12: syntax error: unexpected IDENTIFIER"),
        (401, "no org id"),
        (500, "rpc error: code = Internal desc = ingester unavailable"),
    ],
)
def test_an_http_error_becomes_a_gap_with_lokis_message(
    loki: tuple[FakeLoki, str], status: int, body: str
) -> None:
    fake, url = loki
    fake.status, fake.error_body = status, body
    bundle = collect(incident(), [LokiSource(LokiSettings(url=url))])
    assert not bundle.logs
    assert [g.source for g in bundle.gaps] == ["logs"]
    assert bundle.gaps[0].reason == f"Loki rejected the query: HTTP {status}: {body}"


def test_a_slice_at_the_limit_is_reported(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.streams = [{"stream": {"app": "orders"}, "values": [[ns(m / 10), f"line {m}"] for m in range(300)]}]
    bundle = collect(incident(), [LokiSource(LokiSettings(url=url, limit=40, slices=4))])
    assert len(bundle.logs) == 10
    assert [g.reason for g in bundle.gaps] == ["Loki: 1 of 4 time slices hit the limit of 10 lines"]


def test_an_unreachable_loki_is_a_gap() -> None:
    bundle = collect(incident(), [LokiSource(LokiSettings(url="http://127.0.0.1:9", timeout_seconds=2))])
    assert "cannot connect" in bundle.gaps[0].reason


def test_file_logs_keep_the_window(tmp_path: Path) -> None:
    rows = [
        {"timestamp": (T0 - timedelta(minutes=5)).isoformat(), "service": "orders", "message": "before"},
        {"timestamp": T0.timestamp() + 60, "service": "orders", "level": "ERROR", "message": "in"},
        {"timestamp": "2026-11-20T09:00:00Z", "service": "cart", "message": "also in"},
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = FileLogSource(tmp_path).collect(incident()).logs
    assert [(r.service, r.level, r.message) for r in got] == [
        ("orders", "error", "in"),
        ("cart", "info", "also in"),
    ]
    # A file that is not this format is left out with a gap; the source fails only when no file is readable.
    (tmp_path / "b.jsonl").write_text("{not json\n")
    part = FileLogSource(tmp_path).collect(incident())
    assert len(part.logs) == 2
    assert [g.reason for g in part.gaps if "b.jsonl" in g.reason]
    (tmp_path / "a.jsonl").unlink()
    with pytest.raises(LogSourceError, match=r"b\.jsonl: left out.*not JSON"):
        FileLogSource(tmp_path).collect(incident())


def test_condensation_puts_new_errors_first_within_budget() -> None:
    split = (T0 + timedelta(minutes=75)).timestamp()
    logs = [
        LogRecord(timestamp=T0.timestamp() + i * 10, service="cart", message=f"added item {i} to cart u-{i}")
        for i in range(700)
    ]
    logs += [
        LogRecord(
            timestamp=split + i,
            service="orders",
            level="error",
            message=f"timeout acquiring connection from pool after 30000ms (in use {i}, waiting {i * 2})",
        )
        for i in range(50)
    ]
    logs.sort(key=lambda r: r.timestamp)
    digest = condense(logs, split, budget_chars=600)
    text = digest.render()
    assert len(text) <= 600
    first = digest.templates[0]
    assert (first.service, first.is_new, first.error, first.incident_count) == ("orders", True, True, 50)
    assert "<*>" in first.template and len(first.examples) == 2
    assert digest.total_lines == 750
    tiny = condense(logs, split, budget_chars=80)
    assert len(tiny.render()) <= 80

"""One shop service: ``python -m lab.shop.service NAME``.

Seven services share this program and differ by their routes (``ROUTES``): what they call over HTTP
and what they read or write in PostgreSQL and Redis. Each exposes conventional RED metrics with
``prometheus-client`` (``http_requests_total``, ``http_request_duration_seconds``), its outbound calls
per peer (``http_client_requests_total``, ``http_client_request_duration_seconds``), its database pool
(``db_connections_in_use``), ``process_*`` from the client library, and writes JSON-lines logs.

``POST /admin/fault`` (``{"kind", "magnitude", "seconds"}``) and ``DELETE /admin/fault`` are the
fault injector's hooks (``lab/shop/faults.py``); they are not counted as traffic.
"""

from __future__ import annotations

import hashlib
import json
import queue
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import redis
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from lab import layout
from lab.shop.faults import FaultState
from lab.shop.jsonlog import JsonLog

REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "route", "code"])
DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CLIENT_CALLS = Counter("http_client_requests_total", "Outbound calls by peer", ["peer", "outcome"])
CLIENT_DURATION = Histogram(
    "http_client_request_duration_seconds",
    "Outbound call latency by peer",
    ["peer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
POOL_IN_USE = Gauge("db_connections_in_use", "Database connections checked out of the pool")
POOL_SIZE = Gauge("db_connections_max", "Database pool size")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Pool:
    """A small fixed-size PostgreSQL connection pool (what a web framework's pool does)."""

    def __init__(self, dsn: str, size: int, timeout: float) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._free: queue.LifoQueue[psycopg.Connection[Any] | None] = queue.LifoQueue()
        for _ in range(size):
            self._free.put(None)  # opened lazily, so the service starts before the database
        self._size = size
        POOL_SIZE.set(size)

    def acquire(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        try:
            conn = self._free.get(timeout=self._timeout if timeout is None else timeout)
        except queue.Empty:
            raise HttpError(
                503, f"timed out after {self._timeout:g}s waiting for a database connection"
            ) from None
        POOL_IN_USE.inc()
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(self._dsn, autocommit=True)
                conn.execute("SET statement_timeout = '8s'")
            except psycopg.Error as exc:
                self.release(None)
                raise HttpError(503, f"cannot connect to postgres: {str(exc).strip()[:160]}") from None
        return conn

    def release(self, conn: psycopg.Connection[Any] | None) -> None:
        POOL_IN_USE.dec()
        self._free.put(conn)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.acquire()
        started = time.perf_counter()
        outcome = "ok"
        try:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            outcome = "error"
            if conn.broken:
                conn.close()
            raise HttpError(500, f"query failed: {str(exc).strip()[:160]}") from None
        finally:
            CLIENT_CALLS.labels("postgres", outcome).inc()
            CLIENT_DURATION.labels("postgres").observe(time.perf_counter() - started)
            self.release(conn)


class Shop:
    """Everything one service needs while it serves: its peers, stores, fault state and log."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spec = layout.BY_NAME[name]
        self.log = JsonLog(layout.logs_dir(), name)
        self.http = httpx.Client(timeout=httpx.Timeout(3.0, connect=1.0))
        self.pool = (
            Pool(layout.postgres_dsn(), size=4, timeout=1.5) if "postgres" in self.spec.stores else None
        )
        self.redis = (
            redis.Redis.from_url(layout.redis_url(), socket_timeout=1.0, socket_connect_timeout=1.0)
            if "redis" in self.spec.stores
            else None
        )
        self.faults = FaultState(self.pool)

    def call(self, peer: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            response = self.http.request(method, layout.url_of(peer) + path, json=body)
            if response.status_code >= 500:
                outcome = "error"
                raise HttpError(502, f"{peer} answered {response.status_code} to {method} {path}")
            return response.json()
        except httpx.TimeoutException:
            outcome = "error"
            raise HttpError(504, f"call to {peer} {method} {path} timed out") from None
        except httpx.HTTPError as exc:
            outcome = "error"
            raise HttpError(502, f"call to {peer} {method} {path} failed: {exc.__class__.__name__}") from None
        finally:
            CLIENT_CALLS.labels(peer, outcome).inc()
            CLIENT_DURATION.labels(peer).observe(time.perf_counter() - started)

    def cache(self, op: Callable[[redis.Redis], Any]) -> Any:
        assert self.redis is not None
        started = time.perf_counter()
        outcome = "ok"
        try:
            return op(self.redis)
        except redis.RedisError as exc:
            outcome = "error"
            raise HttpError(503, f"redis unavailable: {exc.__class__.__name__}: {str(exc)[:120]}") from None
        finally:
            CLIENT_CALLS.labels("redis", outcome).inc()
            CLIENT_DURATION.labels("redis").observe(time.perf_counter() - started)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self.pool is not None
        return self.pool.run(query, params)


# Routes: (method, pattern, route label, handler). A handler returns a JSON-able answer; a request
# body arrives as a dict. ``early`` marks where a code path that exits early returns.
Handler = Callable[[Shop, re.Match[str], dict[str, Any]], Any]


def _user() -> str:
    return f"u{random.randint(1, 200)}"


def frontend_home(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {"products": [], "cart": {}}
    products = shop.call("catalog", "GET", "/products")
    cart = shop.call("cart", "GET", f"/cart/{_user()}")
    return {"products": products[:5], "cart": cart}


def frontend_product(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {}
    item = m.group(1)
    product = shop.call("catalog", "GET", f"/products/{item}")
    shop.call("cart", "POST", f"/cart/{_user()}", {"item": item})
    return product


def frontend_checkout(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {"order": None}
    return shop.call("checkout", "POST", "/checkout", {"user": _user()})


def catalog_list(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return []
    cached = shop.cache(lambda r: r.get("catalog:top"))
    if cached is not None:
        return json.loads(cached)
    rows = shop.sql("SELECT id, name, price FROM products ORDER BY id LIMIT 20")
    products = [{"id": r[0], "name": r[1], "price": float(r[2])} for r in rows]
    shop.cache(lambda r: r.set("catalog:top", json.dumps(products), ex=2))
    return products


def catalog_item(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {}
    rows = shop.sql("SELECT id, name, price FROM products WHERE id = %s", (int(m.group(1)),))
    if not rows:
        raise HttpError(404, f"no product {m.group(1)}")
    return {"id": rows[0][0], "name": rows[0][1], "price": float(rows[0][2])}


def cart_get(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {}
    items = shop.cache(lambda r: r.hgetall(f"cart:{m.group(1)}"))
    return {k.decode(): int(v) for k, v in items.items()}


def cart_add(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {"ok": True}
    key = f"cart:{m.group(1)}"
    shop.cache(lambda r: r.hincrby(key, str(body.get("item", "1")), 1))
    shop.cache(lambda r: r.expire(key, 600))
    return {"ok": True}


def checkout_order(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    user = str(body.get("user") or _user())
    cart = shop.call("cart", "GET", f"/cart/{user}")
    item = next(iter(cart), str(random.randint(1, 50)))
    if shop.faults.exits_early():
        # The bad change: the order is acknowledged before stock, payment and shipping are done.
        return {"order": None, "status": "accepted"}
    shop.call("inventory", "POST", "/reserve", {"item": item})
    charge = shop.call("payment", "POST", "/charge", {"user": user, "amount": 10 + len(cart)})
    quote = shop.call("shipping", "POST", "/quote", {"user": user, "items": max(1, len(cart))})
    rows = shop.sql(
        "INSERT INTO orders (customer, item, amount, shipping) VALUES (%s, %s, %s, %s) RETURNING id",
        (user, int(item), charge["amount"], quote["cost"]),
    )
    return {"order": rows[0][0], "status": "placed"}


def inventory_reserve(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    if shop.faults.exits_early():
        return {"reserved": False}
    item = int(body.get("item") or random.randint(1, 50))
    rows = shop.sql(
        "UPDATE stock SET qty = CASE WHEN qty > 0 THEN qty - 1 ELSE 1000 END WHERE item_id = %s RETURNING qty",
        (item,),
    )
    return {"reserved": bool(rows), "left": rows[0][0] if rows else 0}


def inventory_stock(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    rows = shop.sql("SELECT qty FROM stock WHERE item_id = %s", (int(m.group(1)),))
    return {"qty": rows[0][0] if rows else 0}


def payment_charge(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    # A little real work per charge (a signature), so payment has a CPU profile of its own.
    digest = hashlib.pbkdf2_hmac("sha256", str(body).encode(), b"lab", 2_000).hex()
    return {"amount": float(body.get("amount", 10)), "auth": digest[:16]}


def shipping_quote(shop: Shop, m: re.Match[str], body: dict[str, Any]) -> Any:
    items = int(body.get("items", 1))
    cost = round(4.5 + 1.25 * items + sum(i % 7 for i in range(2_000)) / 10_000, 2)
    return {"cost": cost, "days": 2 + items % 3}


ROUTES: dict[str, list[tuple[str, re.Pattern[str], str, Handler]]] = {
    "frontend": [
        ("GET", re.compile(r"^/$"), "/", frontend_home),
        ("GET", re.compile(r"^/product/(\d+)$"), "/product/:id", frontend_product),
        ("POST", re.compile(r"^/checkout$"), "/checkout", frontend_checkout),
    ],
    "catalog": [
        ("GET", re.compile(r"^/products$"), "/products", catalog_list),
        ("GET", re.compile(r"^/products/(\d+)$"), "/products/:id", catalog_item),
    ],
    "cart": [
        ("GET", re.compile(r"^/cart/(\w+)$"), "/cart/:user", cart_get),
        ("POST", re.compile(r"^/cart/(\w+)$"), "/cart/:user", cart_add),
    ],
    "checkout": [("POST", re.compile(r"^/checkout$"), "/checkout", checkout_order)],
    "inventory": [
        ("POST", re.compile(r"^/reserve$"), "/reserve", inventory_reserve),
        ("GET", re.compile(r"^/stock/(\d+)$"), "/stock/:id", inventory_stock),
    ],
    "payment": [("POST", re.compile(r"^/charge$"), "/charge", payment_charge)],
    "shipping": [("POST", re.compile(r"^/quote$"), "/quote", shipping_quote)],
}


def make_handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    routes = ROUTES[shop.name]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # the JSON log has it
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return {}
            value = json.loads(self.rfile.read(length) or b"{}")
            return value if isinstance(value, dict) else {}

        def _admin(self, method: str) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._send(200, b'{"ok": true}')
            elif self.path == "/admin/fault" and method == "GET":
                self._send(200, json.dumps(shop.faults.describe()).encode())
            elif self.path == "/admin/fault" and method == "DELETE":
                shop.faults.clear()
                self._send(200, b'{"active": false}')
            elif self.path == "/admin/fault" and method == "POST":
                spec = self._body()
                try:
                    shop.faults.start(str(spec["kind"]), float(spec["magnitude"]), float(spec["seconds"]))
                except (KeyError, ValueError, TypeError) as exc:
                    self._send(400, json.dumps({"error": str(exc)}).encode())
                    return
                self._send(200, json.dumps(shop.faults.describe()).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def _serve(self, method: str) -> None:
            if self.path in ("/metrics", "/healthz") or self.path.startswith("/admin/"):
                self._admin(method)
                return
            started = time.perf_counter()
            route, status, answer = "unmatched", 404, {"error": "not found"}
            try:
                body = self._body() if method == "POST" else {}
                for verb, pattern, label, handler in routes:
                    match = pattern.match(self.path)
                    if verb == method and match:
                        route = label
                        delay = shop.faults.delay()
                        if delay:
                            time.sleep(delay)
                        if shop.faults.fails():
                            raise RuntimeError(f"unhandled {_BUG} in {label}")
                        answer, status = handler(shop, match, body), 200
                        break
            except HttpError as exc:
                status, answer = exc.status, {"error": str(exc)}
            except Exception as exc:
                status, answer = 500, {"error": f"{exc.__class__.__name__}: {exc}"}
            elapsed = time.perf_counter() - started
            self._send(status, json.dumps(answer).encode())
            REQUESTS.labels(method, route, str(status)).inc()
            DURATION.labels(method, route).observe(elapsed)
            message = f"{method} {route} {status} {elapsed * 1000:.0f}ms"
            if status >= 500:
                shop.log.error(f"{message}: {answer.get('error', '')}", route=route, status=status)
            elif status >= 400:
                shop.log.warning(message, route=route, status=status)
            else:
                shop.log.info(message, route=route, status=status)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


# What an "errors" fault raises: an ordinary-looking bug, not a word that gives the answer away.
_BUG = "KeyError: 'currency' while building the response"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def main(argv: list[str]) -> None:
    # `--state DIR` is only a marker on the command line (process-exporter groups by it); the
    # folder itself comes from LAB_STATE, like every other part of the lab.
    if len(argv) not in (1, 3) or argv[0] not in layout.BY_NAME or argv[1:2] not in ([], ["--state"]):
        sys.exit(f"usage: python -m lab.shop.service {{{','.join(layout.BY_NAME)}}} [--state DIR]")
    shop = Shop(argv[0])
    server = _Server((layout.HOST, shop.spec.port), make_handler(shop))
    shop.log.info(f"{shop.name} listening on {layout.HOST}:{shop.spec.port}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])

"""The always-on load generator: ``python -m lab.shop.loadgen [RATE]``.

Shoppers arrive at a steady ``RATE`` requests per second (default 4) through nginx: the home page,
a product page (which also adds it to a cart) and, less often, a checkout. A few threads, so a slow
shop delays the next requests instead of piling up thousands of them: the load a real site would
see from people who wait for a page before clicking again.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time

import httpx

from lab import layout

_MIX = (("GET", "/", 0.55), ("GET", "/product/{id}", 0.30), ("POST", "/checkout", 0.15))


def _pick() -> tuple[str, str]:
    roll = random.random()
    for method, path, share in _MIX:
        if roll < share:
            return method, path.replace("{id}", str(random.randint(1, 50)))
        roll -= share
    return _MIX[0][0], _MIX[0][1]


def shopper(rate: float, stop: threading.Event) -> None:
    client = httpx.Client(base_url=f"http://{layout.HOST}:{layout.NGINX}", timeout=10.0)
    while not stop.is_set():
        started = time.monotonic()
        method, path = _pick()
        # A failing shop is what the lab is for; the services log and count it.
        with contextlib.suppress(httpx.HTTPError):
            client.request(method, path, json={} if method == "POST" else None)
        wait = random.expovariate(rate) - (time.monotonic() - started)
        if wait > 0:
            stop.wait(wait)


def main(argv: list[str]) -> None:
    rate = float(argv[0]) if argv else 4.0
    threads = 4
    stop = threading.Event()
    for _ in range(threads):
        threading.Thread(target=shopper, args=(rate / threads, stop), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    main(sys.argv[1:])

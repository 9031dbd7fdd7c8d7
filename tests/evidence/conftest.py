"""A fresh live system per test module: toy services, a real Prometheus scraping them every second
(``tests/support/live_system.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..support.demo_prometheus import prometheus  # noqa: F401 (the fixture, for the tests here)
from ..support.live_system import LiveSystem

# Four services as a small shop: the entry point calls two, one of which calls a third.
CALLS = {"frontend": ["orders", "users"], "orders": ["payments"]}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_system(tmp_path: Path) -> Iterator[Callable[..., LiveSystem]]:
    """Start the toy services and a Prometheus scraping them (``rules``: alert rules to evaluate)."""
    started: list[LiveSystem] = []

    def start(*, rules: str | None = None, alertmanager: tuple[str, str] | None = None) -> LiveSystem:
        system = LiveSystem(base=tmp_path / f"system-{len(started)}", calls=CALLS, entry="frontend")
        system.base.mkdir(parents=True, exist_ok=True)
        started.append(system)
        system.start_services()
        if alertmanager is not None:
            system.start_alertmanager(*alertmanager)
        system.start_prometheus(rules)
        return system

    yield start
    for system in started:
        system.close()

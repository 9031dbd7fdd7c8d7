"""The signal catalogues against a real Prometheus scraping real prometheus-client services (issue 22,
problems 3 and 6): errors read 0 before the first error, not absent; the services' availability
is read from ``up``, so a killed process shows, and its callers' refusals are in their log files."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from opsagent.config import PrometheusSettings
from opsagent.domain import Alert, Incident, MetricSeries, TimeWindow
from opsagent.evidence.prometheus import PrometheusSource

from ..support.live_system import fast_catalogue
from ..support.servers import wait_until
from .conftest import CALLS

pytestmark = pytest.mark.integration

SERVICES = sorted({*CALLS, *(c for cs in CALLS.values() for c in cs)})


def now_incident(service: str = "orders", minutes: float = 10) -> Incident:
    """An incident whose alert fires now, with the last ``minutes`` as its window."""
    now = datetime.now(UTC)
    alert = Alert(fingerprint="f1", name="Probe", labels={"service": service}, starts_at=now)
    return Incident(
        id="inc-live",
        title="probe",
        origin="alertmanager",
        alerts=[alert],
        window=TimeWindow(start=now - timedelta(minutes=minutes), end=now),
        alert_time=now,
    )


def by_service(metrics: list[MetricSeries], signal: str) -> dict[str, MetricSeries]:
    return {m.service: m for m in metrics if m.signal == signal and m.peer is None}


def test_the_default_error_ratio_reads_zero_before_any_error(live_system) -> None:
    system = live_system()
    system.wait_scraped()
    time.sleep(5)
    # The default (Kubernetes) catalogue, as shipped; the services carry a `service` label.
    source = PrometheusSource(PrometheusSettings(url=system.prometheus_url, min_step_seconds=1))
    got = by_service(source.collect(now_incident()).metrics, "error_ratio")
    assert sorted(got) == SERVICES
    for series in got.values():
        assert series.values and set(series.values) == {0.0}, series.service


def test_a_killed_service_reads_unavailable_and_its_callers_log_the_refusal(live_system) -> None:
    from opsagent.config import FileLogSettings
    from opsagent.evidence.log_files import FileLogSource

    system = live_system()
    system.wait_scraped()
    source = PrometheusSource(PrometheusSettings(url=system.prometheus_url, min_step_seconds=1))
    before = by_service(source.collect(now_incident()).metrics, "target_up")
    assert sorted(before) == SERVICES and all(set(s.values) == {1.0} for s in before.values())

    system.kill("payments")
    killed = time.time()
    wait_until(lambda: system.query('up{job="payments"} == 0'), 20, 0.5, "payments seen down")
    time.sleep(2)
    after = by_service(source.collect(now_incident()).metrics, "target_up")
    assert after["payments"].values[0] == 1.0 and after["payments"].values[-1] == 0.0
    assert set(after["orders"].values) == {1.0}

    logs = FileLogSource(system.logs_dir, FileLogSettings()).collect(now_incident()).logs
    refused = [r for r in logs if r.service == "orders" and "refused" in r.message.lower()]
    assert refused and all(r.level == "error" and r.timestamp >= killed - 1 for r in refused)


def test_the_prometheus_client_catalogue_reads_every_signal_of_every_service(live_system) -> None:
    system = live_system()
    system.wait_scraped()
    time.sleep(5)
    source = PrometheusSource(
        PrometheusSettings(url=system.prometheus_url, signals=fast_catalogue(), min_step_seconds=1)
    )
    metrics = source.collect(now_incident()).metrics
    for signal in (
        "request_rate",
        "error_ratio",
        "latency_p50_seconds",
        "latency_p99_seconds",
        "cpu_usage_cores",
        "memory_bytes",
        "restarts_total",
        "target_up",
    ):
        assert sorted(by_service(metrics, signal)) == SERVICES, signal
    edges = {(m.service, m.peer) for m in metrics if m.peer is not None}
    assert edges == {(caller, callee) for caller, callees in CALLS.items() for callee in callees}
    assert set(by_service(metrics, "error_ratio")["payments"].values) == {0.0}

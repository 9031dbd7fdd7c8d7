"""Runbook-declared PromQL runs against the real Prometheus when the runbook matches the incident."""

from __future__ import annotations

from opsagent.config import Settings
from opsagent.domain import RunbookMatch, RunbookQuery
from opsagent.evidence.base import Collected
from opsagent.evidence.prometheus import PrometheusSource
from opsagent.factory import build_services
from opsagent.pipeline import investigate

from ..support.demo_prometheus import LivePrometheus


class OneRunbook:
    """Runbook source stub at our own protocol seam: always matches one runbook with a query."""

    name = "runbooks"

    def __init__(self, queries: list[RunbookQuery]) -> None:
        self._queries = queries

    def collect(self, incident):  # type: ignore[no-untyped-def]
        return Collected(runbooks=[RunbookMatch(id="probe", title="probe", score=1.0, queries=self._queries)])


def test_declared_queries_join_the_evidence_and_bad_ones_become_gaps(
    prometheus: LivePrometheus, tmp_path
) -> None:
    recording = prometheus.recordings["db-pool-exhaustion"]
    settings = Settings(data_dir=tmp_path, embedding="hashing", runbooks_dir="runbooks")
    source = PrometheusSource(prometheus.settings)
    queries = [
        RunbookQuery(
            name="pool_in_use_probe",
            promql='max by (service) (demo_db_connections_in_use{namespace=~"{namespace}"})',
        ),
        RunbookQuery(name="broken_probe", promql="sum(rate(demo_error_ratio[5m]"),
    ]
    without = investigate(recording.incident, build_services(settings, [source, OneRunbook([])]))
    inv = investigate(recording.incident, build_services(settings, [source, OneRunbook(queries)]))
    # one more series: the probe's, for the one service that has a connection pool
    assert inv.evidence.metrics == without.evidence.metrics + 1
    assert any("broken_probe" in g.reason and "parse error" in g.reason for g in inv.gaps)
    assert not any("broken_probe" in g.reason for g in without.gaps)

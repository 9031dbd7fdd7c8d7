"""A real Prometheus holding the demo incidents' metrics, backfilled with promtool.

Each recorded column ``<signal>`` of ``metrics/<service>.csv`` becomes the gauge ``demo_<signal>``
with labels ``service`` and ``namespace`` (the alert's), and the signal catalogue used by the tests
maps ``<signal>`` back to ``sum by (service) (demo_<signal>{namespace=~"{namespace}"})``: the live
path (placeholders, range query, step, service label) runs for real and must reproduce the recording.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsagent.config import PrometheusSettings
from opsagent.domain import RecordedIncident
from opsagent.evals.native import load_native

from .servers import free_port, stop, wait_http

ROOT = Path(__file__).resolve().parents[2]
INCIDENTS = ROOT / "examples" / "incidents"
DEMOS = sorted(p.name for p in INCIDENTS.glob("*") if (p / "incident.yaml").is_file())


# The call edge whose calls stop for four minutes after the first demo's alert, while its caller
# keeps being called (``call_edges``).
SILENT_EDGE = ("checkout", "inventory")
SILENT_SECONDS = 240.0


def call_edges(recording: RecordedIncident) -> list[str]:
    """``demo_call_rate_per_second`` samples, one series per call edge of the recording's topology.

    Every edge carries 2 calls/s each minute, except ``SILENT_EDGE``, which carries none in the
    minutes right after the alert: a code path of its caller that stopped.
    """
    namespace = recording.incident.namespace or "default"
    assert recording.incident.alert_time is not None
    alert = recording.incident.alert_time.timestamp()
    stamps = recording.metrics[0].timestamps
    lines: list[str] = []
    for edge in recording.topology.edges:
        labels = f'namespace="{namespace}",service="{edge.caller}",peer="{edge.callee}"'
        for t in stamps:
            silent = (edge.caller, edge.callee) == SILENT_EDGE and alert < t <= alert + SILENT_SECONDS
            lines.append(f"demo_call_rate_per_second{{{labels}}} {0.0 if silent else 2.0!r} {t:.0f}")
    return lines


def openmetrics(recordings: list[RecordedIncident], extra: dict[str, list[str]] | None = None) -> str:
    """Gauges in OpenMetrics text: one family per signal, timestamps in seconds, final ``# EOF``.

    ``extra``: more gauge families, family name → sample lines.
    """
    families: dict[str, list[str]] = {}
    for rec in recordings:
        namespace = rec.incident.namespace or "default"
        for series in rec.metrics:
            lines = families.setdefault(series.signal, [])
            labels = f'namespace="{namespace}",service="{series.service}"'
            lines.extend(
                f"demo_{series.signal}{{{labels}}} {v!r} {t:.0f}"
                for t, v in zip(series.timestamps, series.values, strict=True)
                if math.isfinite(v)
            )
    out: list[str] = []
    for signal, lines in sorted(families.items()):
        out.append(f"# TYPE demo_{signal} gauge")
        out.extend(lines)
    for family, lines in sorted((extra or {}).items()):
        out.append(f"# TYPE {family} gauge")
        out.extend(lines)
    out.append("# EOF")
    return "\n".join(out) + "\n"


def demo_catalogue(recordings: list[RecordedIncident]) -> dict[str, str]:
    signals = sorted({s.signal for rec in recordings for s in rec.metrics})
    return {s: f'sum by (service) (demo_{s}{{namespace=~"{{namespace}}"}})' for s in signals}


@dataclass
class LivePrometheus:
    url: str
    settings: PrometheusSettings
    recordings: dict[str, RecordedIncident]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePrometheus]:
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        pytest.fail("prometheus/promtool missing: run `bash scripts/install-system-deps.sh`")
    if not DEMOS:
        pytest.fail(f"no demo incidents under {INCIDENTS}")
    recordings = {name: load_native(INCIDENTS / name) for name in DEMOS}
    base = tmp_path_factory.mktemp("prometheus")
    source = base / "demo.om.txt"
    edges = {"demo_call_rate_per_second": call_edges(recordings[DEMOS[0]])}
    source.write_text(openmetrics(list(recordings.values()), edges), encoding="utf-8")
    data = base / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    config = base / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n", encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Retention counts from the newest block; the demo data is days old.
            "--storage.tsdb.retention.time=10y",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(base / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", 30, proc=proc, log=base / "prometheus.log")
        settings = PrometheusSettings(url=url, signals=demo_catalogue(list(recordings.values())))
        yield LivePrometheus(url=url, settings=settings, recordings=recordings)
    finally:
        stop(proc)

"""The shipped example for a plain prometheus-client system (examples/live/) is a working configuration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from opsagent.config import PROMETHEUS_CLIENT_SIGNALS, Settings
from opsagent.domain import Edge, Incident, TimeWindow
from opsagent.evidence.topology import ConfiguredTopology

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "live"


def test_the_example_configuration_selects_the_catalogue_and_the_topology(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", str(EXAMPLE / "opsagent.yaml"))
    settings = Settings()
    assert settings.prometheus.signals == PROMETHEUS_CLIENT_SIGNALS
    assert settings.file_logs.limit == 50_000 and settings.normal_period.minimum_seconds == 60
    window = TimeWindow(start="2026-11-20T08:00:00Z", end="2026-11-20T09:00:00Z")
    topology = (
        ConfiguredTopology(settings.topology).collect(Incident(id="i", title="t", window=window)).topology
    )
    assert topology is not None
    assert set(topology.edges) == {
        Edge(caller="frontend", callee="orders"),
        Edge(caller="frontend", callee="users"),
        Edge(caller="orders", callee="payments"),
    }


def test_the_example_alert_rules_are_valid() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: run `bash scripts/install-system-deps.sh`")
    result = subprocess.run(
        [promtool, "check", "rules", str(EXAMPLE / "prometheus-rules.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr

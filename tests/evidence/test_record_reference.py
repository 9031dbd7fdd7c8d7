"""``opsagent record`` with ``reference_offset_hours``: the recording carries the reference period and
its log lines, so replaying it compares with the same normal period as the live investigation did."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from opsagent.cli import app
from opsagent.evals.native import load_native
from opsagent.evals.replay import replay_sources
from opsagent.evidence.base import collect

from ..support.demo_prometheus import DEMOS, INCIDENTS, LivePrometheus

pytestmark = pytest.mark.integration

# Lines from the same hours the day before (db-pool-exhaustion: 2026-11-20 08:00-10:00).
YESTERDAY = [
    {"timestamp": stamp, "service": "orders", "level": "INFO", "message": message}
    for stamp, message in (
        ("2026-11-19T08:30:00Z", "created order y1"),
        ("2026-11-19T09:00:00Z", "created order y2"),
    )
]


def test_record_with_an_offset_writes_the_reference_and_its_lines(
    prometheus: LivePrometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = INCIDENTS / "db-pool-exhaustion"
    assert demo.name in DEMOS
    spec = yaml.safe_load((demo / "incident.yaml").read_text())
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(spec["alert"]))
    logs = tmp_path / "logs"
    shutil.copytree(demo / "logs", logs)
    (logs / "yesterday.jsonl").write_text("".join(json.dumps(r) + "\n" for r in YESTERDAY))
    config = tmp_path / "opsagent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "prometheus": {"url": prometheus.url, "signals": prometheus.settings.signals},
                "logs_dir": str(logs),
                "data_dir": str(tmp_path / "data"),
                "reference_offset_hours": 24,
            }
        )
    )
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", str(config))
    monkeypatch.delenv("OPSAGENT_REFERENCE_OFFSET_HOURS", raising=False)
    out = tmp_path / "recorded"
    result = CliRunner().invoke(
        app, ["record", "--alert", str(alert), "--out", str(out), "--before", "1h35m", "--after", "25m"]
    )
    assert result.exit_code == 0, result.output

    again = load_native(out)
    window, reference = again.incident.window, again.incident.reference
    assert reference is not None
    assert reference.start == window.start - timedelta(hours=24)
    assert reference.end == window.end - timedelta(hours=24)
    bundle = collect(again.incident, replay_sources(again))
    assert [r.message for r in bundle.reference_logs] == ["created order y1", "created order y2"]
    assert bundle.logs and not {"created order y1", "created order y2"} & {r.message for r in bundle.logs}

"""The file log source on real services' log files (issue 22, problem 5): its own limit, the window
read from the end of a long file rather than the whole file, bad lines skipped and counted."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsagent.config import Settings
from opsagent.domain import Alert, Incident, TimeWindow
from opsagent.evidence.base import collect
from opsagent.factory import live_sources

from .conftest import CALLS, ROOT

pytestmark = pytest.mark.integration

# A day of an older process's lines in the entry point's log file, before the live ones.
OLD_LINES = 200_000


def incident(minutes: float = 5) -> Incident:
    now = datetime.now(UTC)
    alert = Alert(fingerprint="f1", name="Probe", labels={"service": "orders"}, starts_at=now)
    return Incident(
        id="inc-logs",
        title="probe",
        origin="alertmanager",
        alerts=[alert],
        window=TimeWindow(start=now - timedelta(minutes=minutes), end=now + timedelta(minutes=30)),
        alert_time=now,
    )


def settings(logs: Path, tmp: Path, **file_logs: object) -> Settings:
    return Settings(data_dir=tmp / "data", runbooks_dir=ROOT / "runbooks", logs_dir=logs, file_logs=file_logs)


@pytest.fixture
def running(live_system, tmp_path: Path):
    """The live system, with a day of older lines at the head of the entry point's log file."""
    logs = tmp_path / "system-0" / "logs"
    logs.mkdir(parents=True)
    start = time.time() - 86_400
    with (logs / "frontend.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(OLD_LINES):
            row = {
                "timestamp": start + i * 0.4,
                "service": "frontend",
                "level": "info",
                "message": f"old {i}",
            }
            fh.write(json.dumps(row) + "\n")
    system = live_system()
    assert system.logs_dir == logs
    system.wait_scraped()
    time.sleep(3)
    return system


def test_the_window_is_read_from_the_end_of_a_long_file(running, tmp_path: Path) -> None:
    source = live_sources(settings(running.logs_dir, tmp_path))[0]
    bundle = collect(incident(), [source])
    services = {r.service for r in bundle.logs}
    assert services == {*CALLS, *(c for cs in CALLS.values() for c in cs)}
    assert not [r for r in bundle.logs if r.message.startswith("old ")]
    frontend = running.logs_dir / "frontend.jsonl"
    read = source.last_bytes_read[frontend]  # type: ignore[attr-defined]
    # The live minutes, not the day before them.
    assert read < frontend.stat().st_size / 20


def test_the_file_source_has_its_own_limit(running, tmp_path: Path) -> None:
    bundle = collect(incident(), live_sources(settings(running.logs_dir, tmp_path, limit=100)))
    assert len(bundle.logs) == 100
    assert bundle.logs == sorted(bundle.logs, key=lambda r: r.timestamp)
    reason = " ".join(g.reason for g in bundle.gaps)
    assert "kept the last 100" in reason and "OPSAGENT_FILE_LOGS__LIMIT" in reason


def test_bad_lines_are_skipped_and_counted(running, tmp_path: Path) -> None:
    with (running.logs_dir / "orders.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("Traceback (most recent call last):\n")
        fh.write('{"timestamp": "yesterday-ish", "message": "bad time"}\n')
        fh.write('{"timestamp": 17\n')
    time.sleep(1)
    bundle = collect(incident(), live_sources(settings(running.logs_dir, tmp_path)))
    assert {r.service for r in bundle.logs} >= {"orders", "payments"}
    late = [r for r in bundle.logs if r.service == "orders" and r.timestamp > time.time() - 0.8]
    assert late, "lines written after the bad ones are still read"
    assert [g.reason for g in bundle.gaps if "3 malformed log lines skipped" in g.reason]

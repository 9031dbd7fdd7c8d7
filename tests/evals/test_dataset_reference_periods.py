"""Reference periods from recordings: the Nezha importer's ``construct_data`` and the native format's
``reference``, replayed through the same ``collect()`` as live sources."""

from __future__ import annotations

import csv
import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from opsagent.domain import TimeWindow
from opsagent.errors import IncidentFormatError
from opsagent.evals.discover import discover, load_case
from opsagent.evals.native import load_native
from opsagent.evals.native_writer import write_recording
from opsagent.evals.replay import replay_sources
from opsagent.evidence.base import collect

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NEZHA = FIXTURES / "nezha"
CONSTRUCT = NEZHA / "construct_data" / "2023-01-29"
DEMO = Path(__file__).resolve().parents[2] / "examples" / "incidents" / "db-pool-exhaustion"


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --- Nezha: construct_data/<day> is the day's reference period ---------------------------------


def _construct_stamps() -> tuple[list[float], list[float]]:
    log_rows = _csv(CONSTRUCT / "log" / "08_50_log.csv")
    trace_rows = _csv(CONSTRUCT / "trace" / "08_50_trace.csv")
    assert log_rows and trace_rows
    logs = [int(r["TimeUnixNano"]) / 1e9 for r in log_rows]
    spans = [int(r["StartTimeUnixNano"]) / 1e9 for r in trace_rows]
    return logs, spans


def test_nezha_reference_period_spans_the_days_construct_data():
    logs, spans = _construct_stamps()
    for rec in (load_case(r) for r in discover(NEZHA, case_glob="2023-01-29*")):
        reference = rec.incident.reference
        assert reference is not None, rec.case_id
        # whole seconds outwards from the first and last record
        assert reference.start_s == math.floor(min(logs + spans))
        assert reference.end_s == math.ceil(max(logs + spans))


def test_nezha_replay_serves_the_construct_data_as_the_reference():
    log_rows = _csv(CONSTRUCT / "log" / "08_50_log.csv")
    trace_rows = _csv(CONSTRUCT / "trace" / "08_50_trace.csv")
    rec = load_case(discover(NEZHA, case_glob="2023-01-29T08:43:04")[0])
    bundle = collect(rec.incident, replay_sources(rec))
    assert not bundle.gaps
    got_logs = sorted((round(r.timestamp, 5), r.service) for r in bundle.reference_logs)
    want_logs = sorted(
        (round(int(r["TimeUnixNano"]) / 1e9, 5), r["PodName"].rsplit("-", 2)[0]) for r in log_rows
    )
    assert got_logs == want_logs
    got_spans = {s.span_id for s in bundle.reference_spans}
    want_spans = {r["SpanID"] for r in trace_rows}
    assert got_spans <= want_spans
    # Every span but, for now, the last to start (test_nezha_reference_period_holds_every_record).
    last = max(trace_rows, key=lambda r: int(r["StartTimeUnixNano"]))["SpanID"]
    assert want_spans - got_spans <= {last}
    root = next(s for s in bundle.reference_spans if s.parent_id is None)
    assert root.service == "ts-gateway-service"
    # The case's own evidence is still there.
    assert bundle.metrics and bundle.logs and bundle.spans


def test_nezha_reference_period_holds_every_record():
    logs, spans = _construct_stamps()
    rec = load_case(discover(NEZHA, case_glob="2023-01-29T08:43:04")[0])
    reference = rec.incident.reference
    assert reference is not None
    assert reference.start_s <= min(logs + spans) and reference.end_s >= max(logs + spans)
    bundle = collect(rec.incident, replay_sources(rec))
    assert len(bundle.reference_logs) == len(logs) and len(bundle.reference_spans) == len(spans)


def test_nezha_day_without_construct_data_has_no_reference():
    for rec in (load_case(r) for r in discover(NEZHA, case_glob="2022-08-22*")):
        assert rec.incident.reference is None
        bundle = collect(rec.incident, replay_sources(rec))
        assert bundle.reference_logs == [] and bundle.reference_spans == []
        assert bundle.spans


# --- Native format: incident.yaml `reference: {start, end}` ------------------------------------


REFERENCE = TimeWindow(
    start=datetime(2026, 11, 19, 8, 0, tzinfo=UTC), end=datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
)
REFERENCE_LINES = [
    {"timestamp": "2026-11-19T08:10:00Z", "service": "orders", "level": "INFO", "message": "created order a"},
    {"timestamp": "2026-11-19T09:50:00Z", "service": "orders", "level": "INFO", "message": "created order b"},
    # outside the reference and the window: served for neither
    {"timestamp": "2026-11-19T11:00:00Z", "service": "orders", "level": "INFO", "message": "stray"},
]


def _demo_with_reference(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    spec_path = folder / "incident.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["reference"] = {"start": "2026-11-19T08:00:00Z", "end": "2026-11-19T10:00:00Z"}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    (folder / "logs" / "reference.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in REFERENCE_LINES), encoding="utf-8"
    )
    return folder


def test_native_reference_is_loaded_and_replayed(tmp_path):
    rec = load_native(_demo_with_reference(tmp_path))
    assert rec.incident.reference == REFERENCE
    bundle = collect(rec.incident, replay_sources(rec))
    assert [r.message for r in bundle.reference_logs] == ["created order a", "created order b"]
    # Each period gets its own lines; the stray one belongs to neither.
    in_window = {r.message for r in bundle.logs}
    assert not in_window & {"created order a", "created order b", "stray"}
    assert all(rec.incident.window.start_s <= r.timestamp <= rec.incident.window.end_s for r in bundle.logs)


def test_native_without_reference_has_none():
    assert load_native(DEMO).incident.reference is None


def test_native_reference_round_trips_through_write_recording(tmp_path):
    source = _demo_with_reference(tmp_path)
    rec = load_native(source)
    bundle = collect(rec.incident, replay_sources(rec))
    payload = yaml.safe_load((source / "incident.yaml").read_text(encoding="utf-8"))["alert"]
    out = tmp_path / "recorded"
    write_recording(out, rec.incident, payload, bundle, source / "topology.yaml")
    written = yaml.safe_load((out / "incident.yaml").read_text(encoding="utf-8"))
    assert written["reference"] == {"start": "2026-11-19T08:00:00Z", "end": "2026-11-19T10:00:00Z"}
    again = load_native(out)
    assert again.incident.reference == rec.incident.reference
    assert again.incident.window == rec.incident.window
    replayed = collect(again.incident, replay_sources(again))
    assert [r.message for r in replayed.reference_logs] == ["created order a", "created order b"]
    assert len(replayed.logs) == len(bundle.logs)


def test_native_reference_must_end_after_it_starts(tmp_path):
    folder = _demo_with_reference(tmp_path)
    spec_path = folder / "incident.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["reference"] = {"start": "2026-11-19T10:00:00Z", "end": "2026-11-19T10:00:00Z"}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    with pytest.raises(IncidentFormatError, match=r"incident\.yaml: reference\.end must be after"):
        load_native(folder)
    spec["reference"] = {"start": "2026-11-19T08:00:00Z"}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    with pytest.raises(IncidentFormatError, match=r"field 'reference\.end'"):
        load_native(folder)

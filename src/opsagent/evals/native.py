"""The native recorded-incident format (docs/FORMATS.md): load and validate one folder.

Every problem is reported as ``IncidentFormatError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsagent.domain import (
    Edge,
    GroundTruth,
    Incident,
    LogRecord,
    MetricSeries,
    RecordedIncident,
    Span,
    TimeWindow,
    Topology,
)
from opsagent.domain.signals import series_of
from opsagent.errors import AlertPayloadError, IncidentFormatError
from opsagent.intake import incident_from_alertmanager, parse_alertmanager


class _WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime


class _IncidentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    alert: dict[str, Any] | None = None
    window: _WindowSpec
    # A period known to be normal; its logs and traces are in the same files as the window's.
    reference: _WindowSpec | None = None
    truth: GroundTruth | None = None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"field '{where}': {first['msg']}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00"))).timestamp()
    raise ValueError(f"not a timestamp: {value!r}")


# A column ``<signal>-><callee>`` in a service's CSV is a call edge's series (the service calls the callee).
EDGE_MARK = "->"


def column_name(signal: str, peer: str | None) -> str:
    """The CSV column of a series: its signal, or ``<signal>-><peer>`` for a call edge's."""
    return signal if peer is None else f"{signal}{EDGE_MARK}{peer}"


def signal_and_peer(column: str) -> tuple[str, str | None]:
    """``call_rate_per_second->inventory`` → (call_rate_per_second, inventory); a plain column has no peer."""
    signal, mark, peer = column.partition(EDGE_MARK)
    return (signal, peer) if mark and signal and peer else (column, None)


def _read_metrics(folder: Path) -> list[MetricSeries]:
    out: list[MetricSeries] = []
    for path in sorted(folder.glob("*.csv")):
        service = path.stem
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if not header or header[0] != "timestamp" or len(header) < 2:
                    raise IncidentFormatError(path, "first row must be 'timestamp,<signal>,...'")
                stamps: list[float] = []
                columns: list[list[float]] = [[] for _ in header[1:]]
                for line_no, row in enumerate(reader, start=2):
                    if len(row) != len(header):
                        raise IncidentFormatError(
                            path, f"line {line_no}: {len(row)} fields, expected {len(header)}"
                        )
                    stamps.append(float(row[0]))
                    for col, cell in zip(columns, row[1:], strict=True):
                        col.append(float(cell) if cell not in ("", "NaN", "nan") else math.nan)
        except ValueError as exc:
            raise IncidentFormatError(path, f"not a number: {exc}") from None
        if not stamps:
            raise IncidentFormatError(path, "no rows")
        for column, values in zip(header[1:], columns, strict=True):
            signal, peer = signal_and_peer(column)
            out.append(series_of(service, signal, stamps, values, peer=peer))
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IncidentFormatError(path, f"line {line_no}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise IncidentFormatError(path, f"line {line_no}: expected a JSON object")
            rows.append(row)
    return rows


def _read_logs(folder: Path) -> list[LogRecord]:
    out: list[LogRecord] = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, row in enumerate(_read_jsonl(path), start=1):
            try:
                out.append(
                    LogRecord(
                        timestamp=_parse_time(row["timestamp"]),
                        service=str(row["service"]),
                        level=str(row.get("level", "info")).lower(),
                        message=str(row["message"]),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise IncidentFormatError(path, f"record {n}: missing or bad field {exc}") from None
    out.sort(key=lambda r: r.timestamp)
    return out


def _read_spans(folder: Path) -> list[Span]:
    out: list[Span] = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, row in enumerate(_read_jsonl(path), start=1):
            try:
                out.append(
                    Span(
                        trace_id=str(row["trace_id"]),
                        span_id=str(row["span_id"]),
                        parent_id=row.get("parent_id") or None,
                        service=str(row["service"]),
                        operation=str(row.get("operation", "")),
                        start=_parse_time(row["start"]),
                        duration_ms=float(row["duration_ms"]),
                        error=bool(row.get("error", False)),
                    )
                )
            except (KeyError, ValueError, ValidationError) as exc:
                raise IncidentFormatError(path, f"record {n}: missing or bad field {exc}") from None
    return out


def read_topology(path: Path) -> Topology:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise IncidentFormatError(path, f"not valid YAML: {exc}".splitlines()[0]) from None
    services = raw.get("services") if isinstance(raw, dict) else None
    if not isinstance(services, dict):
        raise IncidentFormatError(path, "expected 'services: {NAME: {calls: [...]}}'")
    edges: list[Edge] = []
    for name, spec in services.items():
        calls = (spec or {}).get("calls", []) if isinstance(spec, dict) else None
        if not isinstance(calls, list):
            raise IncidentFormatError(path, f"services.{name}.calls must be a list")
        edges.extend(Edge(caller=str(name), callee=str(c)) for c in calls)
    return Topology(services=[str(s) for s in services], edges=edges)


def load_native(folder: Path) -> RecordedIncident:
    """Load one native recorded-incident folder; raise IncidentFormatError on any problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IncidentFormatError(folder, "not a folder")
    spec_path = folder / "incident.yaml"
    if not spec_path.is_file():
        raise IncidentFormatError(folder, "incident.yaml is missing")
    try:
        raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise IncidentFormatError(spec_path, f"not valid YAML: {exc}".splitlines()[0]) from None
    try:
        spec = _IncidentSpec.model_validate(raw)
    except ValidationError as exc:
        raise IncidentFormatError(spec_path, _first_error(exc)) from None
    window = TimeWindow(start=_utc(spec.window.start), end=_utc(spec.window.end))
    if window.end <= window.start:
        raise IncidentFormatError(spec_path, "window.end must be after window.start")
    reference = None
    if spec.reference is not None:
        reference = TimeWindow(start=_utc(spec.reference.start), end=_utc(spec.reference.end))
        if reference.end <= reference.start:
            raise IncidentFormatError(spec_path, "reference.end must be after reference.start")
    if spec.alert is not None:
        try:
            payload = parse_alertmanager(spec.alert)
        except AlertPayloadError as exc:
            raise IncidentFormatError(spec_path, f"alert: {exc}") from None
        incident = incident_from_alertmanager(payload).model_copy(
            update={
                "id": spec.id,
                "title": spec.title,
                "window": window,
                "origin": "recorded",
                "reference": reference,
            }
        )
    else:
        incident = Incident(
            id=spec.id, title=spec.title, origin="recorded", window=window, reference=reference
        )
    metrics_dir = folder / "metrics"
    if not metrics_dir.is_dir():
        raise IncidentFormatError(folder, "metrics/ folder is missing")
    metrics = _read_metrics(metrics_dir)
    if not metrics:
        raise IncidentFormatError(metrics_dir, "no <service>.csv files")
    topology_path = folder / "topology.yaml"
    return RecordedIncident(
        dataset="native",
        incident=incident,
        metrics=metrics,
        logs=_read_logs(folder / "logs") if (folder / "logs").is_dir() else [],
        spans=_read_spans(folder / "traces") if (folder / "traces").is_dir() else [],
        topology=read_topology(topology_path) if topology_path.is_file() else Topology(),
        truth=spec.truth,
        source_path=str(folder),
    )

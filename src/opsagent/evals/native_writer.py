"""The native recorded-incident format, written: the counterpart of ``evals/native.py``, which reads it.

A folder (docs/FORMATS.md): ``incident.yaml`` (id, title, the alert payload, window, optional
reference period and truth), ``metrics/<service>.csv`` (one wide CSV per service),
``logs/<service>.jsonl`` and an optional ``topology.yaml``. What this writes, ``load_native`` reads
back unchanged (tests/evals: the round trip).
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from opsagent.domain import EvidenceBundle, GroundTruth, Incident, LogRecord, MetricSeries, Topology
from opsagent.evals.native import column_name

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(service: str) -> str:
    return _SAFE_NAME.sub("_", service) or "unknown"


def _write_metrics(folder: Path, metrics: list[MetricSeries]) -> int:
    """One wide CSV per service: ``timestamp`` then a column per signal, blank where a signal has no sample.

    A call edge's series is the caller's column ``<signal>-><callee>`` (``native.column_name``).
    """
    by_service: dict[str, list[MetricSeries]] = {}
    for series in metrics:
        by_service.setdefault(series.service, []).append(series)
    folder.mkdir(parents=True, exist_ok=True)
    for service, group in sorted(by_service.items()):
        signals = sorted({column_name(s.signal, s.peer) for s in group})
        table: dict[float, dict[str, float]] = {}
        for series in group:
            column = column_name(series.signal, series.peer)
            for stamp, value in zip(series.timestamps, series.values, strict=True):
                table.setdefault(stamp, {})[column] = value
        with (folder / f"{_file_name(service)}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", *signals])
            for stamp in sorted(table):
                row = table[stamp]
                cells = [
                    "" if s not in row or not math.isfinite(row[s]) else f"{row[s]:.10g}" for s in signals
                ]
                writer.writerow([f"{stamp:.10g}", *cells])
    return len(by_service)


def _write_logs(folder: Path, logs: list[LogRecord]) -> None:
    by_service: dict[str, list[LogRecord]] = {}
    for rec in logs:
        by_service.setdefault(rec.service, []).append(rec)
    folder.mkdir(parents=True, exist_ok=True)
    for service, records in sorted(by_service.items()):
        with (folder / f"{_file_name(service)}.jsonl").open("w", encoding="utf-8") as fh:
            for rec in sorted(records, key=lambda r: r.timestamp):
                fh.write(json.dumps(rec.model_dump(), ensure_ascii=False) + "\n")


def _write_topology(path: Path, topology: Topology) -> None:
    services = {name: {"calls": topology.callees(name)} for name in topology.services}
    for edge in topology.edges:
        services.setdefault(edge.caller, {"calls": topology.callees(edge.caller)})
        services.setdefault(edge.callee, {"calls": topology.callees(edge.callee)})
    path.write_text(yaml.safe_dump({"services": services}, sort_keys=False), encoding="utf-8")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_recording(
    out: Path,
    incident: Incident,
    payload: dict[str, Any],
    bundle: EvidenceBundle,
    topology: Path | None,
    truth: GroundTruth | None = None,
) -> None:
    """Write ``bundle`` as a native recorded-incident folder, with ``truth`` when the cause is known."""
    out.mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {
        "id": incident.id,
        "title": incident.title,
        "alert": payload,
        "window": {"start": _iso(incident.window.start), "end": _iso(incident.window.end)},
    }
    if incident.reference is not None:
        spec["reference"] = {"start": _iso(incident.reference.start), "end": _iso(incident.reference.end)}
    if truth is not None:
        spec["truth"] = truth.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    header = (
        "# Recorded by `opsagent record`. `truth:` (service, fault_type, runbook) makes it an eval case.\n"
    )
    (out / "incident.yaml").write_text(
        header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    _write_metrics(out / "metrics", bundle.metrics)
    # The reference period's lines go in the same files with their own times: replay serves each
    # window what falls inside it, as the live sources did.
    seen = {(r.timestamp, r.service, r.message) for r in bundle.logs}
    logs = [
        *bundle.logs,
        *(r for r in bundle.reference_logs if (r.timestamp, r.service, r.message) not in seen),
    ]
    if logs:
        _write_logs(out / "logs", logs)
    if topology is not None:
        shutil.copyfile(topology, out / "topology.yaml")
    elif bundle.topology.edges:
        _write_topology(out / "topology.yaml", bundle.topology)

"""``opsagent record``: snapshot the live evidence around an alert as a native recorded incident.

The folder it writes (docs/FORMATS.md) loads with ``opsagent investigate`` and ``opsagent eval``,
so a real incident becomes a regression case once someone adds its ``truth``.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from opsagent.commands.common import console, err_console, fail, load_settings
from opsagent.config import Settings
from opsagent.domain import (
    EvidenceBundle,
    FaultType,
    GroundTruth,
    Incident,
    LogRecord,
    MetricSeries,
    Topology,
)
from opsagent.errors import InputError, OpsAgentError
from opsagent.evals.native import column_name

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1h30m``, ``1d`` → timedelta; InputError otherwise."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise InputError(f"not a duration: {text!r} (expected e.g. 30m, 2h, 1h30m)")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


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


def record_alert(
    settings: Settings,
    payload: dict[str, Any],
    out: Path,
    *,
    before: timedelta,
    after: timedelta,
    topology: Path | None = None,
    truth: GroundTruth | None = None,
    now: datetime | None = None,
) -> EvidenceBundle:
    """Collect the live evidence around the alert and write it to ``out``; return what was collected."""
    from opsagent.evals.native import read_topology
    from opsagent.evidence.base import collect
    from opsagent.factory import live_sources
    from opsagent.intake import incident_from_alertmanager, parse_alertmanager
    from opsagent.pipeline import with_reference_offset

    parsed = parse_alertmanager(payload)
    incident = incident_from_alertmanager(
        parsed, lookback=before, lookahead=after, now=now or datetime.now(UTC)
    )
    # The same reference period a live investigation would use, so the recording replays like it.
    incident, reference_gap = with_reference_offset(incident, settings.reference_offset_hours)
    if topology is not None:
        read_topology(topology)  # refuse a broken service map before anything is written
    sources = live_sources(settings)
    if not sources:
        raise InputError(
            "no live evidence source configured: set OPSAGENT_PROMETHEUS__URL "
            "(and optionally OPSAGENT_LOKI__URL or OPSAGENT_LOGS_DIR)"
        )
    bundle = collect(incident, sources, timeout_seconds=settings.source_timeout_seconds)
    if reference_gap is not None:
        bundle.gaps.append(reference_gap)
    if not bundle.metrics:
        reasons = "; ".join(f"{g.source}: {g.reason}" for g in bundle.gaps) or "no series matched"
        raise InputError(f"no metrics collected, nothing recorded ({reasons})")
    write_recording(out, incident, payload, bundle, topology, truth)
    return bundle


def _truth(root_cause: str | None, fault_type: str | None) -> GroundTruth | None:
    if root_cause is None:
        if fault_type is not None:
            raise InputError("--fault-type needs --root-cause")
        return None
    try:
        fault = FaultType(fault_type) if fault_type is not None else None
    except ValueError:
        allowed = ", ".join(f.value for f in FaultType if f is not FaultType.UNKNOWN)
        raise InputError(f"unknown fault type {fault_type!r} (expected one of {allowed})") from None
    return GroundTruth(service=root_cause, fault_type=fault)


def record(
    alert: Annotated[Path, typer.Option("--alert", help="Alertmanager webhook payload (JSON)")],
    out: Annotated[Path, typer.Option("--out", help="folder to write the recorded incident to")],
    before: Annotated[str, typer.Option(help="history before the alert, e.g. 2h")] = "2h",
    after: Annotated[str, typer.Option(help="time after the alert, e.g. 30m")] = "30m",
    topology: Annotated[
        Path | None, typer.Option(help="a topology.yaml (services: {NAME: {calls: [...]}}) to include")
    ] = None,
    force: Annotated[bool, typer.Option(help="write into a folder that is not empty")] = False,
    root_cause: Annotated[
        str | None,
        typer.Option(help="the service that caused it, once known: makes the folder an `opsagent eval` case"),
    ] = None,
    fault_type: Annotated[
        str | None, typer.Option(help="cpu | memory | latency-network | errors-code (with --root-cause)")
    ] = None,
) -> None:
    """Snapshot the live evidence around an alert into a recorded-incident folder."""
    settings = load_settings()
    try:
        window_before, window_after = parse_duration(before), parse_duration(after)
        try:
            payload = json.loads(alert.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{alert}: cannot read ({exc.__class__.__name__})") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{alert}: not JSON ({exc.msg} at line {exc.lineno})") from None
        truth = _truth(root_cause, fault_type)
        if out.exists() and any(out.iterdir()) and not force:
            raise InputError(f"{out} exists and is not empty (use --force to write into it)")
        bundle = record_alert(
            settings, payload, out, before=window_before, after=window_after, topology=topology, truth=truth
        )
    except OpsAgentError as exc:
        fail(str(exc))
    for gap in bundle.gaps:
        err_console.print(f"[yellow]gap[/] {gap.source}: {gap.reason}", highlight=False, markup=True)
    services = len({m.service for m in bundle.metrics})
    console.print(
        f"recorded {len(bundle.metrics)} series of {services} services and {len(bundle.logs)} log lines to {out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("record")(record)

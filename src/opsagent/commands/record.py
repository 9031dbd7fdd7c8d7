"""``opsagent record``: snapshot the live evidence around an alert as a native recorded incident.

The folder it writes (docs/FORMATS.md) loads with ``opsagent investigate`` and ``opsagent eval``,
so a real incident becomes a regression case once someone adds its ``truth``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from opsagent.commands.common import console, err_console, fail, load_settings
from opsagent.config import Settings, parse_duration
from opsagent.domain import (
    EvidenceBundle,
    FaultType,
    GroundTruth,
)
from opsagent.errors import InputError, OpsAgentError
from opsagent.evals.native_writer import write_recording


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
        window_before = timedelta(seconds=parse_duration(before))
        window_after = timedelta(seconds=parse_duration(after))
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

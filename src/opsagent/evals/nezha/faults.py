"""A Nezha day's fault list: one case per injected fault, and the case's ground truth.

``inject_time`` is read as UTC (it matches the metric, log and trace epochs); ``inject_timestamp`` is
ignored because it is 8 hours off on some days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opsagent.domain import FaultType, GroundTruth
from opsagent.errors import IncidentFormatError
from opsagent.evals.nezha.layout import fault_list, service_of

FAULT_TYPES: dict[str, FaultType] = {
    "cpu_contention": FaultType.CPU,
    "cpu_consumed": FaultType.CPU,
    "network_delay": FaultType.LATENCY_NETWORK,
    "return": FaultType.ERRORS_CODE,
    "exception": FaultType.ERRORS_CODE,
}


@dataclass(frozen=True)
class Fault:
    at: float  # epoch seconds (UTC)
    pod: str
    kind: str


def read_faults(day: Path) -> list[Fault]:
    """The day's injected faults in time order."""
    path = fault_list(day)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        faults = [
            Fault(
                at=datetime.strptime(str(e["inject_time"]), "%Y-%m-%d %H:%M:%S")
                .replace(tzinfo=UTC)
                .timestamp(),
                pod=str(e["inject_pod"]),
                kind=str(e["inject_type"]),
            )
            for entries in raw.values()
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IncidentFormatError(path, f"unusable fault list ({type(exc).__name__}: {exc})") from None
    return sorted(faults, key=lambda f: f.at)


def truth(fault: Fault) -> GroundTruth:
    """The injected pod's service and the fault's type (None for a kind we do not map)."""
    return GroundTruth(
        service=service_of(fault.pod), fault_type=FAULT_TYPES.get(fault.kind), fault_label=fault.kind
    )

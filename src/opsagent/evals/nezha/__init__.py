"""Importer for the Nezha dataset (IntelligentDDS/Nezha, FSE 2023): Online Boutique and Train Ticket.

One case per injected fault. Where the files are: ``layout``; the fault list and ground truth:
``faults``; metrics: ``metrics``; log and trace minute files: ``logs``, ``traces``, picked per window
and kept per process by ``records``; how a case's window and evidence are built: ``case``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from opsagent.evals.cases import CaseRef
from opsagent.evals.nezha import case, records
from opsagent.evals.nezha.case import LOOKAHEAD, LOOKBACK, NEXT_FAULT_MARGIN, RECOVERY_MARGIN, load
from opsagent.evals.nezha.faults import FAULT_TYPES, Fault, read_faults
from opsagent.evals.nezha.layout import days, service_of, system
from opsagent.evals.nezha.metrics import EDGE_SIGNAL

FORMAT = "nezha"


def detect(path: Path) -> bool:
    return bool(days(path))


def discover(path: Path) -> list[CaseRef]:
    refs: list[CaseRef] = []
    for day in days(path):
        dataset = system(day)
        for fault in read_faults(day):
            stamp = datetime.fromtimestamp(fault.at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            refs.append(CaseRef(FORMAT, dataset, stamp, str(day), key=str(fault.at)))
    return refs


def clear_caches() -> None:
    """Forget what this process has read (the files changed on disk under the same names)."""
    case.day_of.cache_clear()
    records.clear()


__all__ = [
    "EDGE_SIGNAL",
    "FAULT_TYPES",
    "FORMAT",
    "LOOKAHEAD",
    "LOOKBACK",
    "NEXT_FAULT_MARGIN",
    "RECOVERY_MARGIN",
    "Fault",
    "clear_caches",
    "detect",
    "discover",
    "load",
    "service_of",
]

"""References to recorded cases, cheap to list and to send to worker processes.

Discovery lists ``CaseRef``s without reading evidence; ``load`` (per importer) turns one into a
``RecordedIncident``. A worker process loads its own cases, so only references and small results
cross process boundaries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

FORMATS = ("native", "petshop", "sockshop-rcd", "nezha")


@dataclass(frozen=True)
class CaseRef:
    """One recorded case: which importer reads it, from where, and how reports name it."""

    format: str
    dataset: str
    case_id: str
    path: str
    key: str = ""


def opaque_incident_id(dataset: str, case_id: str) -> str:
    """An incident id that does not reveal the case.

    Case ids of public datasets often spell out the answer (``carts-cpu/1``); the incident id
    reaches reasoners (an LLM reads it), so it must carry no hint of the root cause.
    """
    return f"rec-{hashlib.sha256(f'{dataset}|{case_id}'.encode()).hexdigest()[:12]}"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)

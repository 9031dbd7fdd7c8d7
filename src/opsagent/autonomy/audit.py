"""The audit log: append-only, one entry per decision, approval, execution step, verification and switch.

Entries are chained: each carries the hash of the one before, so an edited or deleted row shows up in
``verify_chain()``. The runner writes an entry *before* an action runs; when that write fails, the action
does not run.
"""

from __future__ import annotations

import threading
from typing import Protocol

from opsagent.domain import SYSTEM_ACTOR, AuditEntry, AuditKind

__all__ = [
    "SYSTEM_ACTOR",
    "AuditEntry",
    "AuditKind",
    "AuditLog",
    "InMemoryAuditLog",
    "entry_hash",
    "verify_chain",
]


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """sha256 over the entry's content (not its seq or hashes) and the previous entry's hash."""
    return entry.chained_hash(prev_hash)


def verify_chain(entries: list[AuditEntry]) -> bool:
    """True when ``entries`` (the whole log, in order) are unmodified and nothing is missing between them."""
    prev = ""
    for entry in entries:
        if entry.prev_hash != prev or entry.hash != entry_hash(entry, prev):
            return False
        prev = entry.hash
    return True


class AuditLog(Protocol):
    """Append-only: there is deliberately no update or delete."""

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Store ``entry``; return it with seq and hashes. Raises ``StoreError`` when it cannot."""
        ...

    def entries(
        self, *, incident_id: str | None = None, request_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Entries in the order they were written, optionally for one incident or action request."""
        ...


class InMemoryAuditLog:
    """For unit tests and the CLI's one-shot runs without a database."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> AuditEntry:
        with self._lock:
            prev = self._entries[-1].hash if self._entries else ""
            stored = entry.model_copy(
                update={"seq": len(self._entries) + 1, "prev_hash": prev, "hash": entry_hash(entry, prev)}
            )
            self._entries.append(stored)
            return stored

    def entries(
        self, *, incident_id: str | None = None, request_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        with self._lock:
            out = [
                e
                for e in self._entries
                if (incident_id is None or e.incident_id == incident_id)
                and (request_id is None or e.request_id == request_id)
            ]
        return out[-limit:] if limit else out

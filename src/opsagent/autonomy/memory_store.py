"""The action store in memory: the ``ActionStore`` seam for tests and single-process use (the service
uses ``store.actions.SqlActionStore``). One re-entrant lock is its atomic step."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from opsagent.autonomy.approvals import IN_FLIGHT, Ledger
from opsagent.autonomy.audit import AuditLog
from opsagent.domain import ActionRequest, ActionStatus, AuditEntry, BreakerReset
from opsagent.errors import NotFoundError


class InMemoryActionStore:
    def __init__(self) -> None:
        self._items: dict[str, ActionRequest] = {}
        self._resets: list[BreakerReset] = []
        # Re-entrant: an atomic step holds it while it calls the store's own methods.
        self._lock = threading.RLock()

    @contextmanager
    def atomic(self, audit: AuditLog) -> Iterator[Ledger]:
        with self._lock:
            yield _MemoryLedger(self, audit)

    def add(self, request: ActionRequest) -> None:
        with self._lock:
            self._items[request.id] = request.model_copy(deep=True)

    def get(self, request_id: str) -> ActionRequest:
        with self._lock:
            item = self._items.get(request_id)
        if item is None:
            raise NotFoundError(f"no action request {request_id!r}")
        return item.model_copy(deep=True)

    def save(self, request: ActionRequest) -> None:
        with self._lock:
            if request.id not in self._items:
                raise NotFoundError(f"no action request {request.id!r}")
            self._items[request.id] = request.model_copy(deep=True)

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        with self._lock:
            items = list(self._items.values())
        return [
            r.model_copy(deep=True)
            for r in sorted(items, key=lambda r: r.created_at)
            if (status is None or r.status is status)
            and (incident_id is None or r.incident_id == incident_id)
        ]

    def started_since(self, since: datetime) -> list[ActionRequest]:
        with self._lock:
            items = list(self._items.values())
        return [
            r.model_copy(deep=True)
            for r in items
            if r.status in IN_FLIGHT or (r.started_at is not None and r.started_at >= since)
        ]

    def resets(self) -> list[BreakerReset]:
        with self._lock:
            return list(self._resets)

    def add_reset(self, reset: BreakerReset) -> None:
        with self._lock:
            self._resets.append(reset)


class _MemoryLedger:
    def __init__(self, store: InMemoryActionStore, audit_log: AuditLog) -> None:
        self._store = store
        self._audit = audit_log

    def get(self, request_id: str) -> ActionRequest:
        return self._store.get(request_id)

    def add(self, request: ActionRequest) -> None:
        self._store.add(request)

    def save(self, request: ActionRequest) -> None:
        self._store.save(request)

    def find(
        self, *, status: ActionStatus | None = None, incident_id: str | None = None
    ) -> list[ActionRequest]:
        return self._store.find(status=status, incident_id=incident_id)

    def started_since(self, since: datetime) -> list[ActionRequest]:
        return self._store.started_since(since)

    def resets(self) -> list[BreakerReset]:
        return self._store.resets()

    def add_reset(self, reset: BreakerReset) -> None:
        self._store.add_reset(reset)

    def audit(self, entry: AuditEntry) -> AuditEntry:
        return self._audit.append(entry)

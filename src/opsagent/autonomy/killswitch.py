"""The kill switch: shared state that drops every service to L1 at once.

It lives in the database (``store.actions.SqlKillSwitch``) so the API, the CLI and every worker see the
same value; the runner reads it again before each action, so switching it on stops an incident's
remaining automatic actions. The ``kill_switch`` setting in the configuration is a second, static way
to hold it on.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

from opsagent.autonomy.audit import AuditLog
from opsagent.domain import AuditEntry, KillSwitchState

__all__ = ["InMemoryKillSwitch", "KillSwitch", "KillSwitchState", "switch"]


class KillSwitch(Protocol):
    def state(self) -> KillSwitchState: ...

    def set(self, state: KillSwitchState) -> None: ...


class InMemoryKillSwitch:
    def __init__(self) -> None:
        self._state = KillSwitchState()
        self._lock = threading.Lock()

    def state(self) -> KillSwitchState:
        with self._lock:
            return self._state.model_copy()

    def set(self, state: KillSwitchState) -> None:
        with self._lock:
            self._state = state.model_copy()


def switch(kill: KillSwitch, audit: AuditLog, *, on: bool, actor: str, reason: str = "") -> KillSwitchState:
    """Turn the switch on or off, audited (the audit entry is written first)."""
    now = datetime.now(UTC)
    state = KillSwitchState(on=on, actor=actor, reason=reason, changed_at=now)
    audit.append(
        AuditEntry(
            kind="kill_switch",
            reason=reason or ("kill switch on" if on else "kill switch off"),
            actor=actor,
            at=now,
            outcome="on" if on else "off",
        )
    )
    kill.set(state)
    return state

"""What every executor shares: its result, the protocols of an executor and of a target inspector, and
the last checks before anything runs (a safe action id, a resolved target of the right service)."""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import BaseModel, Field, JsonValue

from opsagent.autonomy.policy import TargetState
from opsagent.autonomy.target import UNRESOLVED
from opsagent.domain import ActionSpec, ActionTarget, ProposedAction
from opsagent.errors import ExecutorError

_MAX_OUTPUT = 8_000
# Action ids name files and URL segments: nothing that could climb out of a folder or a path.
_SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ExecutionResult(BaseModel):
    """What happened when an executor ran an action."""

    ok: bool
    summary: str
    output: str = ""
    detail: dict[str, JsonValue] = Field(default_factory=dict)


class Executor(Protocol):
    def run(self, spec: ActionSpec, action: ProposedAction, *, request_id: str) -> ExecutionResult: ...


class TargetInspector(Protocol):
    """How many replicas the target has and how many are being acted on now (blast-radius input)."""

    def target_state(self, target: ActionTarget) -> TargetState: ...


class UnknownTargets:
    """The inspector when nothing can be asked: replica counts unknown, only the service caps apply."""

    def target_state(self, target: ActionTarget) -> TargetState:
        return TargetState()


def truncate(text: str) -> str:
    return text if len(text) <= _MAX_OUTPUT else text[:_MAX_OUTPUT] + "\n…[truncated]"


def check_id(action_id: str) -> None:
    if not _SAFE_ID.match(action_id):
        raise ExecutorError(f"action id {action_id!r} is not a safe name")


def check_target(action: ProposedAction) -> None:
    """Refuse to touch anything the catalogue did not resolve, or resolved to another service.

    The gate already denies such actions; this is the last line, in the only code that changes things.
    """
    resolved = action.resolved
    if resolved is None or resolved.kind == UNRESOLVED:
        raise ExecutorError(f"{action.action_id}: its target was not resolved, so it is not run")
    if resolved.conflict:
        raise ExecutorError(f"{action.action_id}: target mismatch ({resolved.conflict}), so it is not run")

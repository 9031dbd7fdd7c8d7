"""Actions, autonomy levels and the decisions the autonomy gate takes."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Risk(StrEnum):
    READ = "read"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


ExecutorKind = Literal["http", "script", "kubernetes", "none"]


class AutonomyLevel(StrEnum):
    """L0 (only gather evidence) to L5 (remediate on its own, verify, roll back); see DESIGN.md."""

    L0 = "L0"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"
    L5 = "L5"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    @classmethod
    def parse(cls, text: str) -> AutonomyLevel:
        """Accept ``L3``, ``l3`` or ``3``; raise ValueError naming the allowed values otherwise."""
        cleaned = text.strip().upper()
        if cleaned.isdigit():
            cleaned = f"L{cleaned}"
        try:
            return cls(cleaned)
        except ValueError:
            allowed = ", ".join(level.value for level in cls)
            raise ValueError(f"unknown autonomy level {text!r} (expected one of {allowed})") from None


class VerifySpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    promql: str
    wait: str = "5m"


class TargetSpec(BaseModel):
    """Which parameters name what an action touches, where a runbook declares it (``target:``).

    Without one the catalogue resolves the target from the usual parameter names (``deployment``,
    ``pod``, ``node``, ...); an action whose target cannot be resolved either way is refused.
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    namespace: str | None = None


class ActionSpec(BaseModel):
    """A catalogued action, declared in a runbook's front matter."""

    model_config = ConfigDict(frozen=True)

    id: str
    description: str = ""
    risk: Risk
    executor: ExecutorKind = "none"
    params: dict[str, JsonValue] = Field(default_factory=lambda: dict[str, JsonValue](type="object"))
    verify: VerifySpec | None = None
    rollback: str | None = None
    target: TargetSpec | None = None


class ActionTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    namespace: str | None = None


class ResolvedTarget(BaseModel):
    """What the executor will actually touch, resolved from the action's parameters.

    ``service`` is the service the object belongs to (a deployment named like it, one of its pods),
    or None for objects that belong to no one service (a node, a database cluster, a feature flag).
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    namespace: str | None = None
    service: str | None = None
    # Why this is not the proposal's service (or namespace): the gate refuses such a proposal.
    conflict: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


class ProposedAction(BaseModel):
    """An action someone (engine, LLM, person) proposes for an incident."""

    action_id: str
    risk: Risk
    target: ActionTarget
    params: dict[str, JsonValue] = Field(default_factory=dict)
    reason: str = ""
    runbook_id: str | None = None
    # Required parameters nothing could derive: a person supplies them when approving; until then the
    # action cannot run (the gate never lets it run on its own).
    missing_params: list[str] = Field(default_factory=list)
    # Set by the catalogue from the parameters; what policy, limits and audit judge. None: not resolved.
    resolved: ResolvedTarget | None = None


class DecisionOutcome(StrEnum):
    EXECUTE = "execute"
    AWAIT_APPROVAL = "await_approval"
    NOT_PROPOSED = "not_proposed"
    DENIED = "denied"

    @property
    def label(self) -> str:
        return {
            "execute": "would run automatically",
            "await_approval": "awaits approval",
            "not_proposed": "not proposed at this level",
            "denied": "denied",
        }[self.value]


class Decision(BaseModel):
    """What the autonomy gate decided for one action, and why."""

    action: ProposedAction
    outcome: DecisionOutcome
    level: AutonomyLevel
    reason: str
    verify_after: bool = False
    # Dry-run mode: ``execute`` means "would run"; the runner records it and changes nothing.
    dry_run: bool = False

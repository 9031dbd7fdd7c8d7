"""The action catalogue: every action runbooks declare; nothing outside it can be proposed or run."""

from __future__ import annotations

from collections.abc import Iterable

import jsonschema
from pydantic import JsonValue

from opsagent.domain import ActionSpec, ActionTarget, ProposedAction, Runbook
from opsagent.errors import ActionValidationError


class ActionCatalog:
    def __init__(self, specs: Iterable[ActionSpec]) -> None:
        self._specs: dict[str, ActionSpec] = {}
        for spec in specs:
            self._specs.setdefault(spec.id, spec)

    @classmethod
    def from_runbooks(cls, runbooks: Iterable[Runbook]) -> ActionCatalog:
        return cls(action for book in runbooks for action in book.actions)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, action_id: str) -> ActionSpec:
        spec = self._specs.get(action_id)
        if spec is None:
            raise ActionValidationError(f"action {action_id!r} is not in the catalogue")
        return spec

    def specs(self) -> list[ActionSpec]:
        return sorted(self._specs.values(), key=lambda s: s.id)

    def propose(
        self,
        action_id: str,
        target: ActionTarget,
        params: dict[str, JsonValue],
        *,
        reason: str = "",
        runbook_id: str | None = None,
    ) -> ProposedAction:
        """A validated proposal: the action exists and ``params`` match its JSON schema."""
        spec = self.get(action_id)
        try:
            jsonschema.validate(params, spec.params)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "params"
            raise ActionValidationError(f"action {action_id!r}: {where}: {exc.message}") from None
        except jsonschema.SchemaError as exc:
            raise ActionValidationError(
                f"action {action_id!r} has an invalid schema: {exc.message}"
            ) from None
        return ProposedAction(
            action_id=action_id,
            risk=spec.risk,
            target=target,
            params=params,
            reason=reason,
            runbook_id=runbook_id,
        )

    def default_params(self, action_id: str, target: ActionTarget) -> dict[str, JsonValue]:
        """Parameters filled from the target for the usual names, and from schema defaults."""
        spec = self.get(action_id)
        props = spec.params.get("properties")
        if not isinstance(props, dict):
            return {}
        known: dict[str, JsonValue] = {
            "service": target.service,
            "deployment": target.service,
            "statefulset": target.service,
            "app": target.service,
            "namespace": target.namespace or "default",
        }
        out: dict[str, JsonValue] = {}
        for name, schema in props.items():
            if name in known:
                out[name] = known[name]
            elif isinstance(schema, dict) and "default" in schema:
                out[name] = schema["default"]
        return out

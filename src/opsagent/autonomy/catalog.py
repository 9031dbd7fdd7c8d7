"""The action catalogue: every action runbooks declare; nothing outside it can be proposed or run."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import TypedDict, Unpack

import jsonschema
from pydantic import JsonValue

from opsagent.autonomy.target import resolve
from opsagent.domain import ActionSpec, ActionTarget, ProposedAction, Runbook
from opsagent.errors import ActionValidationError


class ProposalNote(TypedDict, total=False):
    """What a proposal says besides the action, its target and parameters: why, and which runbook."""

    reason: str
    runbook_id: str | None


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
        allow_missing: bool = False,
        **note: Unpack[ProposalNote],
    ) -> ProposedAction:
        """A validated proposal: the action exists and ``params`` match its JSON schema.

        Its ``resolved`` target is what the executor will touch; when that is not ``target``'s
        service or namespace it says so (``resolved.conflict``) and the gate refuses it.

        With ``allow_missing``, required parameters that are absent become ``missing_params``, and
        derived values that do not fit the schema are dropped (and so become missing if required):
        a label is a hint, not a parameter a person checked. Anything else wrong raises. A proposal
        with missing parameters can only run once a person completes them.
        """
        spec = self.get(action_id)
        missing: list[str] = []
        if allow_missing:
            params, missing = _partial(action_id, params, spec.params)
        else:
            _validate(action_id, params, spec.params)
        return ProposedAction(
            action_id=action_id,
            risk=spec.risk,
            target=target,
            params=params,
            missing_params=missing,
            resolved=resolve(spec, target, params),
            **note,
        )

    def propose_partial(
        self, action_id: str, target: ActionTarget, params: dict[str, JsonValue], **note: Unpack[ProposalNote]
    ) -> ProposedAction:
        """``propose`` with ``allow_missing``: a plan from derived parameters, for a person to complete."""
        return self.propose(action_id, target, params, allow_missing=True, **note)

    def recheck(self, action: ProposedAction, *, allow_missing: bool = False) -> ProposedAction:
        """``action`` proposed again through the catalogue (``propose``, or ``propose_partial`` when
        ``allow_missing``): whoever made it, the catalogue sets the risk and checks the parameters."""
        return self.propose(
            action.action_id,
            action.target,
            action.params,
            allow_missing=allow_missing,
            reason=action.reason,
            runbook_id=action.runbook_id,
        )

    def default_params(
        self, action_id: str, target: ActionTarget, labels: Mapping[str, str] | None = None
    ) -> dict[str, JsonValue]:
        """Parameters derived from the target, from ``labels`` and from the schema's defaults.

        ``labels`` are alert labels *about the target* (see ``labels_for``): a parameter named like a
        label takes its value (``pod``, ``container``, ``cluster``, ...), with a few usual aliases
        (``database`` from ``datname``/``db``). The target names the service; the schema's
        ``default`` fills the rest. Nothing is invented: what none of these give stays missing.
        """
        spec = self.get(action_id)
        props = spec.params.get("properties")
        if not isinstance(props, dict):
            return {}
        have = {k: v for k, v in (labels or {}).items() if v}
        known: dict[str, JsonValue] = {
            "service": target.service,
            "deployment": have.get("deployment", target.service),
            "statefulset": have.get("statefulset", target.service),
            "app": target.service,
            "namespace": target.namespace or have.get("namespace") or "default",
        }
        out: dict[str, JsonValue] = {}
        for name, schema in props.items():
            aliases = (name, *_LABEL_ALIASES.get(name, ()))
            from_label = next((have[a] for a in aliases if a in have), None)
            if name in known:
                out[name] = known[name]
            elif from_label is not None:
                out[name] = _coerce(from_label, schema)
            elif isinstance(schema, dict) and "default" in schema:
                out[name] = schema["default"]
        return out


# Label names that mean the same as a parameter name (Prometheus exporters' usual spellings).
_LABEL_ALIASES: dict[str, tuple[str, ...]] = {
    "database": ("datname", "db", "db_name"),
    "cluster": ("db_cluster", "pg_cluster"),
    "node": ("kubernetes_node", "nodename"),
    "pvc": ("persistentvolumeclaim",),
    "cronjob": ("cronjob_name",),
}
# Labels naming the service an alert is about, for ``labels_for``.
_SERVICE_LABELS = ("service", "app", "app_kubernetes_io_name", "deployment", "job", "container")


def labels_for(target: ActionTarget, alert_labels: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The labels of the alerts that are about ``target``'s service, merged (first alert wins).

    An incident's alerts often fire on a victim (checkout's 5xx) while the root cause is elsewhere
    (orders' pool): the victim's pod or database must not become the root cause's parameters.
    """
    out: dict[str, str] = {}
    for labels in alert_labels:
        if any(labels.get(name) == target.service for name in _SERVICE_LABELS):
            for key, value in labels.items():
                out.setdefault(key, value)
    return out


def _coerce(value: str, schema: object) -> JsonValue:
    """A label (always a string) as the parameter's type, when the schema asks for a number."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    return value


def _partial(
    action_id: str, params: dict[str, JsonValue], schema: dict[str, JsonValue]
) -> tuple[dict[str, JsonValue], list[str]]:
    """``params`` without values that do not fit, and the required parameters not among them.

    What is kept is checked against ``schema`` without the requirement for what is missing.
    """
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    kept: dict[str, JsonValue] = {}
    for name, value in params.items():
        sub = props.get(name)
        if isinstance(sub, dict) and not _fits(value, sub):
            continue
        kept[name] = value
    listed = schema.get("required")
    required = [n for n in listed if isinstance(n, str)] if isinstance(listed, list) else []
    missing = [n for n in required if n not in kept]
    relaxed: dict[str, JsonValue] = {**schema, "required": [n for n in required if n in kept]}
    _validate(action_id, kept, relaxed if missing else schema)
    return kept, missing


def _validate(action_id: str, params: dict[str, JsonValue], schema: dict[str, JsonValue]) -> None:
    """Raise ``ActionValidationError`` naming where ``params`` break ``schema`` (or that it is broken)."""
    try:
        _check(params, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "params"
        raise ActionValidationError(f"action {action_id!r}: {where}: {exc.message}") from None
    except jsonschema.SchemaError as exc:
        raise ActionValidationError(f"action {action_id!r} has an invalid schema: {exc.message}") from None


def _fits(value: JsonValue, schema: dict[str, JsonValue]) -> bool:
    try:
        _check(value, schema)
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return False
    return True


def _check(instance: JsonValue, schema: dict[str, JsonValue]) -> None:
    """``jsonschema.validate``: the best-matching error raised, with the schema checked against its
    meta-schema and compiled once per schema text rather than on every call (checking it was most of
    proposing a runbook's actions: ~10 ms each)."""
    try:
        text = json.dumps(schema)  # key order kept: it orders the errors best_match chooses among
    except (TypeError, ValueError):  # not JSON (a YAML date in a schema): checked the slow way
        jsonschema.validate(instance, schema)
        return
    error = jsonschema.exceptions.best_match(_validator(text).iter_errors(instance))
    if error is not None:
        raise error


@functools.lru_cache(maxsize=512)
def _validator(schema_text: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # raises SchemaError, which is not cached: a broken schema fails every time
    return cls(schema)

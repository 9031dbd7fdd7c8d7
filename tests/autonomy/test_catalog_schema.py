"""The catalogue checks parameters against an action's schema as ``jsonschema.validate`` would,
with each schema checked and compiled once."""

from __future__ import annotations

import jsonschema
import pytest
from pydantic import JsonValue

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.domain import ActionSpec, ActionTarget
from opsagent.errors import ActionValidationError

SCHEMA: dict[str, JsonValue] = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "deployment": {"type": "string", "pattern": "^[a-z-]+$"},
    },
    "required": ["replicas", "deployment"],
    "additionalProperties": False,
}


def _catalog(params: dict[str, JsonValue]) -> ActionCatalog:
    return ActionCatalog([ActionSpec(id="scale", risk="low", params=params)])


def _message_of_validate(params: dict[str, JsonValue], schema: dict[str, JsonValue]) -> str:
    try:
        jsonschema.validate(params, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "params"
        return f"action 'scale': {where}: {exc.message}"
    raise AssertionError("expected an error")


@pytest.mark.parametrize(
    "params",
    [
        {"replicas": 0, "deployment": "cart"},
        {"replicas": 3, "deployment": "Cart!"},
        {"replicas": "three", "deployment": 7},  # two errors: the best match is named, as validate names it
        {"replicas": 3, "deployment": "cart", "force": True},
        {"deployment": "cart"},
    ],
)
def test_a_bad_parameter_is_refused_with_the_error_validate_gives(params: dict[str, JsonValue]) -> None:
    catalog = _catalog(SCHEMA)
    target = ActionTarget(service="cart")
    for _ in range(2):  # the second time from the compiled schema
        with pytest.raises(ActionValidationError) as caught:
            catalog.propose("scale", target, params)
        assert str(caught.value) == _message_of_validate(params, SCHEMA)


def test_good_parameters_pass_and_a_missing_one_is_listed() -> None:
    catalog = _catalog(SCHEMA)
    target = ActionTarget(service="cart")
    action = catalog.propose("scale", target, {"replicas": 2, "deployment": "cart"})
    assert action.params == {"replicas": 2, "deployment": "cart"}
    partial = catalog.propose_partial("scale", target, {"replicas": 2, "deployment": "Bad!"})
    assert partial.missing_params == ["deployment"]  # the value that does not fit is dropped


def test_a_broken_schema_is_refused_every_time() -> None:
    catalog = _catalog({"type": "object", "properties": {"replicas": {"type": "count"}}})
    for _ in range(2):  # a schema error is not remembered as a good validator
        with pytest.raises(ActionValidationError, match="invalid schema"):
            catalog.propose("scale", ActionTarget(service="cart"), {"replicas": 2})

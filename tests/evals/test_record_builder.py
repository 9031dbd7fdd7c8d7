"""``tables.builder`` makes what pydantic's validation makes from the same values: the Nezha importer
builds its log lines and spans with it, and the analysis must not be able to tell them apart."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from pydantic import BaseModel

from opsagent.domain import LogRecord, Span
from opsagent.evals.tables import builder

LOG = {
    "timestamp": 1674981742.3831508,
    "service": "ts-travel-service",
    "level": "info",
    "message": "16:42:22.382 INFO  t.s.TravelServiceImpl#532 [getRouteByRouteId]",
    "trace_id": "ffc8ca7e4c8f06c75142c880d5595d96",
    "span_id": None,
}
SPAN = {
    "trace_id": "b0103bb0161ad7fa352fe1828eeb643a",
    "span_id": "a4424f20bffee416",
    "parent_id": None,
    "service": "ts-gateway-service",
    "operation": "FilteringWebHandler.handle",
    "start": 1674981768.6977634,
    "duration_ms": 317.308,
    "error": False,
}


def _same(built: BaseModel, validated: BaseModel) -> None:
    assert type(built) is type(validated)
    assert list(built.__dict__.items()) == list(validated.__dict__.items())
    assert built.model_fields_set == validated.model_fields_set
    assert built.__pydantic_extra__ == validated.__pydantic_extra__
    assert built.__pydantic_private__ == validated.__pydantic_private__
    assert built == validated and hash(built) == hash(validated)
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    assert built.model_dump_json() == validated.model_dump_json()
    assert repr(built) == repr(validated)
    assert pickle.loads(pickle.dumps(built)) == validated


@pytest.mark.parametrize(
    ("cls", "values", "unset"),
    [
        (LogRecord, LOG, frozenset()),
        (Span, SPAN, frozenset({"error"})),
        (Span, {**SPAN, "error": True}, frozenset()),
    ],
)
def test_a_built_record_is_the_validated_one(
    cls: type[BaseModel], values: dict[str, Any], unset: frozenset[str]
) -> None:
    validated = cls(**{k: v for k, v in values.items() if k not in unset})
    _same(builder(cls, unset)(dict(values)), validated)


def test_built_records_own_their_fields_set() -> None:
    build = builder(Span, frozenset({"error"}))
    first, second = build(dict(SPAN)), build(dict(SPAN))
    changed = first.model_copy(update={"error": True})
    assert changed.model_fields_set == first.model_fields_set | {"error"}
    assert "error" not in first.model_fields_set and "error" not in second.model_fields_set
    assert copy.deepcopy(first) == first


def test_a_built_record_stays_frozen() -> None:
    record = builder(LogRecord)(dict(LOG))
    with pytest.raises(ValueError, match="frozen"):
        record.message = "changed"  # type: ignore[misc]

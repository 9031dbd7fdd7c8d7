"""The topology step's victim rules: causal order and resource-led services (analysis/engine.py)."""

from __future__ import annotations

from opsagent.analysis.propagate import propagation_adjust

CALLEES = {"caller": {"callee"}}


def test_anomalous_callee_discounts_its_caller() -> None:
    scores = {"caller": 4.0, "callee": 3.5}
    assert propagation_adjust(scores, CALLEES) == {"caller": "callee"}
    assert scores["caller"] < 4.0


def test_callee_that_moved_later_explains_nothing() -> None:
    scores = {"caller": 4.0, "callee": 3.5}
    onsets: dict[str, float | None] = {"caller": 1000.0, "callee": 1180.0}
    assert propagation_adjust(scores, CALLEES, onsets, tolerance=60.0) == {}
    assert scores["caller"] == 4.0
    # within one sample the order is unknown: the callee may still explain it
    onsets["callee"] = 1060.0
    assert propagation_adjust(scores, CALLEES, onsets, tolerance=60.0) == {"caller": "callee"}


def test_resource_led_caller_is_not_a_victim() -> None:
    scores = {"caller": 4.0, "callee": 3.5}
    assert propagation_adjust(scores, CALLEES, resource_led={"caller"}) == {}
    assert scores["caller"] == 4.0

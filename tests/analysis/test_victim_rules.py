"""The topology step's victim rules: an anomalous callee explains its caller, unless the caller's
own resources lead (analysis/propagate.py)."""

from __future__ import annotations

from opsagent.analysis.propagate import propagation_adjust

CALLEES = {"caller": {"callee"}}


def test_anomalous_callee_discounts_its_caller() -> None:
    scores = {"caller": 4.0, "callee": 3.5}
    assert propagation_adjust(scores, CALLEES) == {"caller": "callee"}
    assert scores["caller"] < 4.0


def test_resource_led_caller_is_not_a_victim() -> None:
    scores = {"caller": 4.0, "callee": 3.5}
    assert propagation_adjust(scores, CALLEES, resource_led={"caller"}) == {}
    assert scores["caller"] == 4.0

"""The campaign's plan and fault specifications (pure parts of lab/campaign.py and lab/inject.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lab import campaign, inject


def test_a_24_fault_plan_covers_every_kind_three_times_and_most_targets():
    plan = campaign.plan(19, 24)
    assert Counter(kind for kind, _ in plan) == {kind: 3 for kind in inject.KINDS}
    assert len({target for _, target in plan}) >= 6
    for kind, target in plan:
        assert target in inject.KINDS[kind].targets


def test_the_plan_is_the_seeds():
    assert campaign.plan(3, 10) == campaign.plan(3, 10)
    assert campaign.plan(3, 10) != campaign.plan(4, 10)


def test_an_explicit_list_is_checked_before_anything_runs():
    assert campaign.parse_only("latency:payment, db-lock:inventory") == [
        ("latency", "payment"),
        ("db-lock", "inventory"),
    ]
    with pytest.raises(ValueError, match="unknown fault kind"):
        campaign.parse_only("meltdown:payment")
    with pytest.raises(ValueError, match="cannot target"):
        campaign.parse_only("db-lock:payment")  # payment has no table


def test_a_fault_carries_its_truth_type_and_default_magnitude():
    fault = inject.Fault.of("dependency-down", "redis", seconds=60)
    assert (fault.fault_type, fault.magnitude, fault.seconds) == ("unavailable", 1, 60)
    assert inject.Fault.of("latency", "payment", 30, magnitude=1.5).magnitude == 1.5


def test_merged_reports_score_all_cases_together(tmp_path):
    def report(cases):
        return {
            "seed": 1,
            "cases": cases,
            "replay": {"replayed": len(cases), "same_top": 1},
            "wall_seconds": 10,
        }

    def case(kind, target, rank, fault_type, top_type, to_findings):
        return {
            "kind": kind, "target": target, "magnitude": 1, "fault_type": fault_type, "top": target,
            "top_fault_type": top_type, "rank_of_truth": rank, "fault_to_alert_s": 70.0,
            "alert_to_findings_s": to_findings, "alerts_sent": 2, "alerts_received": 2,
        }  # fmt: skip

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report([case("errors", "cart", 1, "errors-code", "errors-code", 5.0)])))
    b.write_text(json.dumps(report([case("latency", "payment", 2, "latency-network", "cpu", 9.0)])))
    out = tmp_path / "merged.json"
    campaign.merge([str(a), str(b)], str(out))
    doc = json.loads(out.read_text())
    assert (doc["faults"], doc["ac@1"], doc["ac@3"], doc["type"]) == (2, 0.5, 1.0, 0.5)
    assert doc["alert_to_findings_p50_s"] == 7.0
    assert (doc["alerts_sent"], doc["alerts_received"]) == (4, 4)
    assert doc["replay"] == {"replayed": 2, "same_top": 2}

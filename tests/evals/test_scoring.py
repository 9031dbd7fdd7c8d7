"""Scoring on hand-computed examples."""

import math

import pytest

from opsagent.domain import FaultType, GroundTruth, RunbookMatch
from opsagent.evals.accuracy import (
    CaseScore,
    ac_at,
    avg_at_5,
    by_dataset,
    percentile,
    rank_of,
    runbook_fits,
    summarise,
)


def test_rank_of_is_one_based_and_none_when_absent():
    assert rank_of(["a", "b", "c"], "a") == 1
    assert rank_of(["a", "b", "c"], "c") == 3
    assert rank_of(["a", "b", "b"], "b") == 2
    assert rank_of(["a", "b"], "z") is None
    assert rank_of([], "a") is None


def test_ac_at_k_and_avg_at_5_by_hand():
    # Ranks 1, 2, 4, 6 and a miss: AC@1 = 1/5, AC@2 = 2/5, AC@3 = 2/5, AC@4 = 3/5, AC@5 = 3/5.
    ranks = [1, 2, 4, 6, None]
    assert ac_at(ranks, 1) == pytest.approx(0.2)
    assert ac_at(ranks, 3) == pytest.approx(0.4)
    assert ac_at(ranks, 5) == pytest.approx(0.6)
    assert avg_at_5(ranks) == pytest.approx((0.2 + 0.4 + 0.4 + 0.6 + 0.6) / 5)
    assert ac_at([], 1) == 0.0


def test_percentile_interpolates_linearly():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([10.0], 95) == 10.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert math.isnan(percentile([], 50))


def _case(dataset, fault, rank, correct=None, seconds=1.0):
    return CaseScore(dataset, fault, rank, correct, seconds)


def test_summary_per_dataset_and_fault_type_never_pools_datasets():
    cases = [
        _case("a", "cpu", 1, True, 1.0),
        _case("a", "cpu", 3, False, 2.0),
        _case("a", "memory", None, None, 3.0),
        _case("b", "cpu", 2, True, 4.0),
    ]
    report = by_dataset(cases)
    assert list(report) == ["a", "b"]
    a = report["a"]
    assert a["cases"] == 3
    assert a["ac@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert a["ac@3"] == pytest.approx(2 / 3, abs=1e-4)
    assert a["ac@5"] == pytest.approx(2 / 3, abs=1e-4)
    # AC@1..5 = 1/3, 1/3, 2/3, 2/3, 2/3 → 8/15
    assert a["avg@5"] == pytest.approx(8 / 15, abs=1e-4)
    # Only labelled cases count toward fault-type accuracy: one of two.
    assert a["fault_type_accuracy"] == 0.5
    assert a["median_seconds"] == 2.0
    assert a["p95_seconds"] == pytest.approx(2.9)
    by_fault = a["by_fault"]
    assert set(by_fault) == {"cpu", "memory"}
    assert by_fault["cpu"]["cases"] == 2 and by_fault["cpu"]["ac@1"] == 0.5
    assert by_fault["memory"]["ac@5"] == 0.0 and by_fault["memory"]["fault_type_accuracy"] is None
    assert report["b"]["ac@1"] == 0.0 and report["b"]["ac@3"] == 1.0


def test_runbook_fit_is_the_share_of_the_cases_that_say_whether_their_first_runbook_fits():
    cases = [
        CaseScore("a", "cpu", 1, True, 1.0, runbook_fits=True),
        CaseScore("a", "cpu", 2, None, 1.0, runbook_fits=False),
        CaseScore("a", "cpu", 1, True, 1.0, runbook_fits=True),
        # no fault type in the truth: nothing to fit
        CaseScore("a", None, 1, None, 1.0, runbook_fits=None),
    ]
    report = by_dataset(cases)["a"]
    assert report["runbook_fit"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["by_fault"]["unknown"]["runbook_fit"] is None


def test_unlabelled_fault_types_are_grouped_as_unknown():
    report = by_dataset([_case("x", None, 1)])
    assert list(report["x"]["by_fault"]) == ["unknown"]
    assert summarise([])["cases"] == 0


def test_the_first_runbook_fits_when_it_is_the_one_the_truth_names_or_else_lists_its_fault_type():
    pool = RunbookMatch(id="db-pool", title="pool", score=1.0, fault_types=["errors-code"])
    deploy = RunbookMatch(id="bad-deploy", title="deploy", score=0.9, fault_types=["errors-code"])
    named = GroundTruth(service="orders", fault_type=FaultType.ERRORS_CODE, runbook="db-pool")
    assert runbook_fits(named, [pool, deploy]) is True
    # the named runbook second: the advice given is another's, though it fits the fault type
    assert runbook_fits(named, [deploy, pool]) is False
    typed = GroundTruth(service="orders", fault_type=FaultType.ERRORS_CODE)
    assert runbook_fits(typed, [deploy]) is True
    assert runbook_fits(GroundTruth(service="orders", fault_type=FaultType.CPU), [deploy]) is False
    assert runbook_fits(typed, []) is False
    assert runbook_fits(GroundTruth(service="orders"), [deploy]) is None
    assert runbook_fits(None, [deploy]) is None

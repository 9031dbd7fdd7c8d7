"""A callee that the trace shows answering a service's failing requests normally does not explain the
service's failure (``propagate.answered_callees``, switch ``traced_origins``)."""

from __future__ import annotations

from opsagent.analysis.events import PatternShift
from opsagent.analysis.explain import explain
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.patterns import pattern_shifts
from opsagent.analysis.prepare import Prepared
from opsagent.analysis.propagate import answered_callees, propagate, propagation_adjust
from opsagent.analysis.series import ServiceEvidence

from ..support.scored_evidence import make_slow
from ..support.traced_traffic import wrong_answer_beside_a_failing_batch

CALLS = {"mid": {"back"}}


def _evidence(calls_back: bool) -> dict[str, ServiceEvidence]:
    """Each service's changed events, its pattern channel the strongest of them."""
    logs, spans = wrong_answer_beside_a_failing_batch(calls_back)
    shifts = pattern_shifts(logs, spans, 0.0, 600.0, 1000.0, origin_by_operation=True)
    out: dict[str, ServiceEvidence] = {}
    for shift in shifts:
        out.setdefault(shift.service, ServiceEvidence()).patterns.append(shift)
    for ev in out.values():
        ev.channels = {"pattern": max(p.score for p in ev.patterns), "metric": 0.1}
    return out


def test_the_walk_records_which_callees_the_failing_requests_called() -> None:
    evidence = _evidence(calls_back=True)
    mid_origin = next(p for p in evidence["mid"].patterns if p.kind == "origin")
    back_origin = next(p for p in evidence["back"].patterns if p.kind == "origin")
    assert mid_origin.answered_by == {"back"}
    assert back_origin.answered_by == frozenset()  # the batch job calls nothing


def test_a_callee_that_answered_the_failing_requests_does_not_explain_the_caller() -> None:
    evidence = _evidence(calls_back=True)
    scores = {svc: ev.channels["pattern"] for svc, ev in evidence.items()}
    # back fails as much as mid does: by the call graph alone mid is back's victim
    assert propagation_adjust(dict(scores), CALLS) == {"mid": "back"}
    answered = {svc: answered_callees(ev) for svc, ev in evidence.items()}
    assert answered["mid"] == {"back"}
    kept = dict(scores)
    assert propagation_adjust(kept, CALLS, answered=answered) == {}
    assert kept == scores


def test_requests_that_called_nothing_below_clear_no_callee() -> None:
    # the same failures, but mid's requests never reach back (only the topology says mid calls it):
    # the trace has nothing to say about back, and the call graph's reading stands
    evidence = _evidence(calls_back=False)
    answered = {svc: answered_callees(ev) for svc, ev in evidence.items()}
    assert answered["mid"] == set()
    scores = {svc: ev.channels["pattern"] for svc, ev in evidence.items()}
    assert propagation_adjust(scores, CALLS, answered=answered) == {"mid": "back"}


def _shift(kind: str, score: float, answered_by: frozenset[str] = frozenset()) -> PatternShift:
    return PatternShift(
        service="mid",
        kind=kind,  # type: ignore[arg-type]
        key="ERROR b.Mid#55 wrong total",
        normal_count=0,
        incident_count=10,
        expected=1.0,
        z=4.0,
        score=score,
        error=True,
        answered_by=answered_by,
    )


def test_only_a_leading_origin_clears_its_callees() -> None:
    origin = _shift("origin", 1.0, frozenset({"back"}))
    # the origin is the service's strongest evidence: back is cleared
    assert answered_callees(ServiceEvidence(patterns=[origin], channels={"pattern": 1.0})) == {"back"}
    # a much stronger changed event of another kind leads: the origin clears nothing
    stronger = _shift("log", 3.0)
    led = ServiceEvidence(patterns=[origin, stronger], channels={"pattern": 3.0})
    assert answered_callees(led) == set()
    # the service's metrics lead its changed events: nothing is cleared either
    by_metrics = ServiceEvidence(patterns=[origin], channels={"pattern": 1.0, "metric": 4.0})
    assert answered_callees(by_metrics) == set()


def test_an_answered_callee_leaves_the_other_callees_to_explain() -> None:
    callees = {"mid": {"back", "store"}}
    scores = {"mid": 4.0, "back": 4.5, "store": 3.0}
    # back answered mid's failing requests; store, anomalous enough, still explains mid
    assert propagation_adjust(scores, callees, answered={"mid": {"back"}}) == {"mid": "store"}


def test_a_callee_that_answered_slowly_still_explains_the_caller() -> None:
    # the walk reads failures and changed events, not durations: a caller's timeout below which the
    # slow callee's span did not fail is the callee's doing
    prepared = Prepared(series=[], step=1.0, alert=600.0, alert_known=True, callees=CALLS)
    evidence = _evidence(calls_back=True)
    scores = {svc: ev.channels["pattern"] for svc, ev in evidence.items()}
    assert "mid" not in propagate(prepared, evidence, dict(scores), DEFAULT_OPTIONS).explained_by
    make_slow(evidence["back"], "back", 2.0 * scores["back"])
    scores["back"] = evidence["back"].channels["metric"]
    assert propagate(prepared, evidence, dict(scores), DEFAULT_OPTIONS).explained_by["mid"] == "back"
    # with the switch off the call graph's reading applies whatever the trace says
    off = DEFAULT_OPTIONS.with_(traced_origins=False)
    evidence = _evidence(calls_back=True)
    scores = {svc: ev.channels["pattern"] for svc, ev in evidence.items()}
    assert propagate(prepared, evidence, dict(scores), off).explained_by["mid"] == "back"


def test_the_report_names_the_callees_that_answered() -> None:
    prepared = Prepared(series=[], step=1.0, alert=600.0, alert_known=True, callees=CALLS)
    evidence = _evidence(calls_back=True)
    scores = {svc: ev.channels["pattern"] for svc, ev in evidence.items()}
    placement = propagate(prepared, evidence, scores, DEFAULT_OPTIONS)
    placement.callers = {"back": {"mid"}}
    mid = next(s for s in explain(evidence, scores, placement, {}, DEFAULT_OPTIONS) if s.service == "mid")
    where = next(e.summary for e in mid.evidence if e.id == "topology:mid")
    assert where.endswith("(its failing requests called back, which answered them normally)"), where

"""What the engine found re-ranks the runbooks (``pipeline._refine_runbooks``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsagent.domain import Alert, EvidenceBundle, Incident, RunbookMatch, Suspect, TimeWindow
from opsagent.domain.findings import EvidenceItem, FaultType
from opsagent.pipeline import _refine_runbooks
from opsagent.reasoning.offline import best_runbooks

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
WINDOW = TimeWindow(start=T0, end=T0 + timedelta(minutes=30))


class EvidenceSearch:
    """Runbook search at our own protocol seam: answers the evidence query with fixed scores."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.queries: list[str] = []

    def search(self, query: str, *, services: list[str] | None = None, k: int = 5) -> list[RunbookMatch]:
        self.queries.append(query)
        ranked = sorted(self.scores.items(), key=lambda item: -item[1])[:k]
        return [RunbookMatch(id=rid, title=rid, score=score) for rid, score in ranked]


def _suspect() -> Suspect:
    line = "cpu_usage rose from 1.253 to 100.2 (237.3 robust sd) from 18:37:55"
    item = EvidenceItem(id="metric:carts:cpu_usage", kind="metric", service="carts", summary=line)
    return Suspect(service="carts", score=3.0, fault_type=FaultType.CPU, evidence=[item])


def _bundle(**incident: object) -> EvidenceBundle:
    # what the first search found: the outage runbook matched the incident's own words best
    first = [
        RunbookMatch(id="outage", title="outage", score=0.9),
        RunbookMatch(id="cpu", title="cpu", score=0.2),
    ]
    return EvidenceBundle(
        incident=Incident(id="i", title="Recorded shop incident", window=WINDOW, **incident), runbooks=first
    )


def test_a_title_only_incidents_runbooks_are_ranked_by_the_evidence_alone() -> None:
    bundle = _bundle()
    search = EvidenceSearch({"cpu": 0.8, "outage": 0.5})
    _refine_runbooks(bundle, [_suspect()], search)
    assert [r.id for r in bundle.runbooks] == ["cpu", "outage"]
    assert [r.score for r in bundle.runbooks] == [0.8, 0.5]
    # the query carries the evidence's words, not its numbers and times
    assert search.queries == ["cpu problem in carts: cpu_usage rose from to robust sd"]


def test_an_alerts_runbooks_keep_what_the_alert_said_and_add_the_evidence() -> None:
    alert = Alert(fingerprint="f", name="ThirdPartyDown", starts_at=T0)
    bundle = _bundle(alerts=[alert])
    _refine_runbooks(bundle, [_suspect()], EvidenceSearch({"cpu": 0.8, "outage": 0.5}))
    assert [(r.id, r.score) for r in bundle.runbooks] == [("outage", 1.4), ("cpu", 1.0)]


def test_a_questions_runbooks_keep_what_the_question_said() -> None:
    bundle = _bundle(question="is the payment provider down?")
    _refine_runbooks(bundle, [_suspect()], EvidenceSearch({"cpu": 0.8, "outage": 0.5}))
    assert bundle.runbooks[0].id == "outage"


def _typed(rid: str, score: float, *types: str) -> RunbookMatch:
    return RunbookMatch(id=rid, title=rid, score=score, fault_types=list(types))


def test_a_runbook_for_another_fault_comes_after_every_runbook_that_does_not_contradict_the_diagnosis() -> (
    None
):
    # HighLatency named the slow-upstream runbook (+1 for the alert name); checkout's CPU saturated
    books = [
        _typed("slow-upstream", 1.9, "latency-network"),
        _typed("disk-full", 0.6),
        _typed("cpu-saturation", 0.5, "cpu"),
    ]
    assert [b.id for b in best_runbooks(books, "cpu")] == ["cpu-saturation", "disk-full", "slow-upstream"]
    # the fit adds to the score: an untyped runbook well ahead still comes first
    weak_fit = [*books[:2], _typed("cpu-saturation", 0.2, "cpu")]
    assert best_runbooks(weak_fit, "cpu")[0].id == "disk-full"
    # without a diagnosed type, nothing is contradicted and the scores decide
    assert [b.id for b in best_runbooks(books, FaultType.UNKNOWN.value)] == [
        "slow-upstream",
        "disk-full",
        "cpu-saturation",
    ]
    assert best_runbooks(books, None)[0].id == "slow-upstream"


def test_the_cut_keeps_the_runbook_for_the_suspected_fault_behind_many_alert_name_matches() -> None:
    alert = Alert(fingerprint="f", name="HighErrorRate", starts_at=T0)
    first = [_typed(f"errors-{n}", 1.5 - n / 10, "errors-code") for n in range(5)]
    bundle = EvidenceBundle(
        incident=Incident(id="i", title="t", window=WINDOW, alerts=[alert]), runbooks=first
    )
    suspect = _suspect().model_copy(update={"fault_type": FaultType.UNAVAILABLE})
    search = TypedSearch([_typed("service-unavailable", 0.7, "unavailable")])
    _refine_runbooks(bundle, [suspect], search)
    assert len(bundle.runbooks) == 5
    assert bundle.runbooks[0].id == "service-unavailable"


class TypedSearch:
    """Runbook search at our own protocol seam: answers every query with the same typed matches."""

    def __init__(self, matches: list[RunbookMatch]) -> None:
        self.matches = matches

    def search(self, query: str, *, services: list[str] | None = None, k: int = 5) -> list[RunbookMatch]:
        return self.matches[:k]

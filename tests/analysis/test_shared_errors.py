"""An error event rising in several services at once weighs as an echo (patterns._shared_as_echoes)."""

from __future__ import annotations

from opsagent.analysis.channels import event_shifts
from opsagent.analysis.events import PatternShift
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.patterns import ECHO_WEIGHT, _shared_as_echoes
from opsagent.analysis.split import Split
from opsagent.domain import EvidenceBundle, LogRecord

from ..support.log_bundles import lines_every, log_bundle

SPLIT = 600.0
END = 900.0
UNREACHABLE = "ERROR dispatcherServlet threw exception: No instances available for basic"


def _bundle() -> EvidenceBundle:
    """``travel`` and ``travel2`` both call ``basic``, which restarts: both write the same client
    error, more often than before. ``travel`` also stops writing a statement it wrote on its
    requests while they keep coming (its own fault: an exception skips it)."""
    logs: list[LogRecord] = []
    for service in ("travel", "travel2"):
        for k in range(6):
            logs += lines_every(service, f"{service} step{chr(97 + k)} handled", 0, END, 10.0)
        logs += lines_every(service, UNREACHABLE, 0, SPLIT, 120.0)
        logs += lines_every(service, UNREACHABLE, SPLIT, END, 15.0)
    logs += lines_every("travel", "travel getTickets calculate distance", 0, SPLIT, 20.0)
    return log_bundle("rec-shared", logs, END, SPLIT + 30.0)


def _top(options: EngineOptions = DEFAULT_OPTIONS) -> dict[str, float]:
    split = Split(0.0, SPLIT, SPLIT, END, SPLIT, END)
    top: dict[str, float] = {}
    for s in event_shifts(_bundle(), split, options):
        top[s.service] = max(top.get(s.service, 0.0), s.score)
    return top


def test_a_shared_error_no_longer_outranks_a_services_own_stopped_code_path() -> None:
    off = _top(DEFAULT_OPTIONS.with_(shared_errors=False))
    on = _top()
    # without the rule the shared error decides: travel2 (nothing of its own) ties travel
    assert off["travel2"] >= off["travel"]
    # with it, travel's own stopped statement is its evidence and leads
    assert on["travel"] > on["travel2"]
    assert abs(on["travel2"] / off["travel2"] - ECHO_WEIGHT) < 1e-9


def _shift(service: str, key: str, z: float, *, kind: str = "log", echo: float = 0.0) -> PatternShift:
    return PatternShift(
        service=service,
        kind=kind,  # type: ignore[arg-type]
        key=key,
        normal_count=1,
        incident_count=10,
        expected=1.0,
        z=z,
        score=1.0,
        error=True,
        echo_share=echo,
    )


def test_only_errors_rising_in_two_services_are_discounted_and_never_twice() -> None:
    own = _shift("a", "ERROR a only", 5.0)
    shared_a = _shift("a", "ERROR shared", 5.0)
    # the same error written by b, its origin blamed on b's callee c; and d's, against the reference
    shared_b = _shift("c", "ERROR shared (surfacing in b)", 5.0, kind="origin")
    already_echo = _shift("d", "ERROR shared (against the reference period)", 5.0, echo=0.8)
    _shared_as_echoes([own, shared_a, shared_b, already_echo])
    assert own.score == 1.0
    assert shared_a.score == ECHO_WEIGHT
    assert shared_b.score == ECHO_WEIGHT
    assert already_echo.score == 1.0


def test_an_origin_blamed_on_a_callee_is_not_a_second_service_raising_its_line() -> None:
    # b writes the error, the origin walk blames its callee c: one raiser, nothing is discounted
    line = _shift("b", "ERROR wrong value from c", 5.0, echo=0.9)
    origin = _shift("c", "ERROR wrong value from c (surfacing in b)", 5.0, kind="origin")
    _shared_as_echoes([line, origin])
    assert origin.score == 1.0

"""Handlers cut short (analysis/handlers.py): a change point in a handler's own spans."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.events import STOPPED_KINDS
from opsagent.analysis.handlers import CHANGE_WINDOW_SECONDS, g_statistic_z, truncated_handlers
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.domain import EvidenceBundle, FaultType, Incident, Span, TimeWindow

ALERT = 600.0
CUT = ALERT - 30.0  # where the events' split sits (patterns.pattern_split)
END = ALERT + 300.0
STEPS = ("ChargeCard", "ShipOrder", "EmptyCart", "SendConfirmation")


def _request(
    i: int,
    t: float,
    steps: tuple[str, ...] = STEPS,
    service: str = "checkout",
    failed_callee: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[Span]:
    """One PlaceOrder request: a frontend span, the handler span, and one child span per step.

    ``failed_callee``: the first step's call to payment fails (an error status in payment).
    ``extra``: more children as (service, operation).
    """
    trace = f"t{i}"
    root = Span(
        trace_id=trace, span_id=f"fe{i}", service="frontend", operation="Checkout", start=t, duration_ms=40
    )
    handler = Span(
        trace_id=trace,
        span_id=f"h{i}",
        parent_id=root.span_id,
        service=service,
        operation="PlaceOrder",
        start=t + 0.001,
        duration_ms=30,
    )
    out = [root, handler]
    for j, step in enumerate(steps):
        out.append(
            Span(
                trace_id=trace,
                span_id=f"s{i}-{j}",
                parent_id=handler.span_id,
                service=service,
                operation=step,
                start=t + 0.002 + j * 0.001,
                duration_ms=5,
            )
        )
    if failed_callee:
        out.append(
            Span(
                trace_id=trace,
                span_id=f"pay{i}",
                parent_id=f"s{i}-0",
                service="payment",
                operation="Charge",
                start=t + 0.003,
                duration_ms=2,
                error=True,
            )
        )
    for j, (svc, op) in enumerate(extra):
        out.append(
            Span(
                trace_id=trace,
                span_id=f"x{i}-{j}",
                parent_id=handler.span_id,
                service=svc,
                operation=op,
                start=t + 0.01 + j * 0.001,
                duration_ms=5,
            )
        )
    return out


def _traffic(
    change_at: float, after: dict[str, object], every: float = 4.0, start: float = 0.0
) -> list[Span]:
    """A request every ``every`` seconds from ``start`` to END; from ``change_at`` on with ``after``."""
    spans: list[Span] = []
    for i, t in enumerate(np.arange(start, END, every).tolist()):
        spans += _request(i, t, **after) if t >= change_at else _request(i, t)  # type: ignore[arg-type]
    return spans


def test_g_statistic_of_a_clean_split() -> None:
    # 15 of 15 requests took the step before, 0 of 5 after: G = 2 [15 ln(4/3) + 5 ln 4]
    z = g_statistic_z(*(np.array([v], dtype=np.float64) for v in (15, 15, 0, 5)))
    assert z[0] == pytest.approx(math.sqrt(2 * (15 * math.log(4 / 3) + 5 * math.log(4))))
    # nothing changed: no evidence
    same = g_statistic_z(*(np.array([v], dtype=np.float64) for v in (10, 10, 5, 5)))
    assert same[0] == pytest.approx(0.0)


def test_a_handler_that_exits_early_is_one_stopped_code_path_of_its_service() -> None:
    spans = _traffic(ALERT + 2.0, {"steps": ("ChargeCard",)})
    found = truncated_handlers(spans, 0.0, CUT, END)
    assert len(found) == 1
    (event,) = found
    assert (event.service, event.kind) == ("checkout", "handler")
    assert event.key == "PlaceOrder: EmptyCart, SendConfirmation, ShipOrder"
    # a request every 4 s: 0, 4, ..., 600 took every step; 604, ..., 896 only the first
    assert event.requests == (151, 74)
    assert (event.normal_count, event.incident_count) == (151, 0)
    assert event.first_seen == pytest.approx(604.001)
    assert event.z <= -3.0 and event.code_path_stopped and "handler" in STOPPED_KINDS


def test_no_normal_period_before_the_window_is_needed() -> None:
    # the recording starts 30 s before the alert: the handler's own requests are the baseline
    spans = _traffic(ALERT + 2.0, {"steps": ("ChargeCard",)}, every=2.5, start=ALERT - 31.0)
    spans = [s for s in spans if s.start < ALERT + 30.0]
    found = truncated_handlers(spans, ALERT - 31.0, CUT, ALERT + 30.0)
    assert [e.service for e in found] == ["checkout"]


def test_a_handler_that_calls_another_service_instead_has_changed_its_mix() -> None:
    # the same number of steps, one replaced by another: switched, not cut short
    switched = (*STEPS[:-1], "SendSms")
    spans = _traffic(ALERT + 2.0, {"steps": switched})
    assert truncated_handlers(spans, 0.0, CUT, END) == []


def test_a_handler_cut_short_by_a_failing_callee_is_a_victim() -> None:
    spans = _traffic(ALERT + 2.0, {"steps": ("ChargeCard",), "failed_callee": True})
    assert truncated_handlers(spans, 0.0, CUT, END) == []


def test_an_optional_step_is_not_a_regular_one() -> None:
    # ads are shown on every other request before: their stopping is the request mix
    spans: list[Span] = []
    for i, t in enumerate(np.arange(0.0, END, 4.0).tolist()):
        shown = t < ALERT + 2.0 and i % 2 == 0
        spans += _request(i, t, extra=(("ads", "GetAds"),) if shown else ())
    assert truncated_handlers(spans, 0.0, CUT, END) == []


def test_a_change_long_after_the_alert_is_aftermath() -> None:
    late = CUT + CHANGE_WINDOW_SECONDS + 60.0
    spans = _traffic(late, {"steps": ("ChargeCard",)})
    assert truncated_handlers(spans, 0.0, CUT, END) == []
    # the same change inside the window is found
    assert truncated_handlers(_traffic(CUT + 10.0, {"steps": ("ChargeCard",)}), 0.0, CUT, END)


def test_too_few_requests_say_nothing() -> None:
    spans = _traffic(ALERT + 2.0, {"steps": ("ChargeCard",)}, every=30.0, start=ALERT - 100.0)
    spans = [s for s in spans if s.start < ALERT + 40.0]
    assert truncated_handlers(spans, ALERT - 100.0, CUT, END) == []


def test_a_parent_cycle_in_a_malformed_trace_does_not_hang() -> None:
    spans = _traffic(ALERT + 2.0, {"steps": ("ChargeCard",)})
    looped = [
        Span(
            trace_id="loop",
            span_id="a",
            parent_id="b",
            service="x",
            operation="A",
            start=ALERT,
            duration_ms=1,
        ),
        Span(
            trace_id="loop",
            span_id="b",
            parent_id="a",
            service="y",
            operation="B",
            start=ALERT,
            duration_ms=1,
            error=True,
        ),
    ]
    found = truncated_handlers(spans + looped, 0.0, CUT, END)
    assert [e.service for e in found] == ["checkout"]


def _bundle(spans: list[Span]) -> EvidenceBundle:
    incident = Incident(
        id="rec-handlers",
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(END, UTC)),
        alert_time=datetime.fromtimestamp(ALERT, UTC),
    )
    return EvidenceBundle(incident=incident, spans=spans)


def test_the_engine_ranks_the_handler_that_exits_early_as_a_code_fault() -> None:
    bundle = _bundle(_traffic(ALERT + 2.0, {"steps": ("ChargeCard",)}))
    top = rank_suspects(bundle)[0]
    assert top.service == "checkout" and top.fault_type is FaultType.ERRORS_CODE
    summary = next(item.summary for item in top.evidence if item.signal == "handler")
    assert summary.startswith(
        "handler PlaceOrder stopped taking EmptyCart, SendConfirmation, ShipOrder: 0 of "
    )
    assert "a code path stopped" in summary
    off = rank_suspects(bundle, DEFAULT_OPTIONS.with_(truncated_handlers=False))
    assert not any(item.signal == "handler" for s in off for item in s.evidence)

"""A stopped code path weighs as an error rise of the same z (patterns._shifts, stopped_full_weight)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from opsagent.analysis.channels import event_shifts
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.split import Split
from opsagent.domain import EvidenceBundle, Incident, LogRecord, TimeWindow

SPLIT = 600.0
END = 900.0


def _logs(service: str, message: str, start: float, end: float, every: float) -> list[LogRecord]:
    n = int((end - start) / every)
    return [LogRecord(timestamp=start + i * every, service=service, message=message) for i in range(n)]


def _bundle() -> EvidenceBundle:
    """``price`` keeps serving its requests but stops writing one statement it wrote on each of
    them (an exception skips it); ``travel``, its caller, fails on what it got back and writes a
    few more error lines than before."""
    logs: list[LogRecord] = []
    for k in range(6):
        logs += _logs("price", f"price step{chr(97 + k)} handled", 0, END, 10.0)
        logs += _logs("travel", f"travel step{chr(97 + k)} handled", 0, END, 10.0)
    logs += _logs("price", "price query route and train type", 0, SPLIT, 20.0)
    logs += _logs("travel", "ERROR servlet service failed", 0, SPLIT, 120.0)
    logs += _logs("travel", "ERROR servlet service failed", SPLIT, END, 20.0)
    logs.sort(key=lambda r: r.timestamp)
    incident = Incident(
        id="rec-stopped",
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(END, UTC)),
        alert_time=datetime.fromtimestamp(SPLIT + 30.0, UTC),
    )
    return EvidenceBundle(incident=incident, logs=logs)


def _top(options: EngineOptions = DEFAULT_OPTIONS) -> dict[str, tuple[float, float]]:
    split = Split(0.0, SPLIT, SPLIT, END, SPLIT, END)
    found = event_shifts(_bundle(), split, options)
    top: dict[str, tuple[float, float]] = {}
    for s in found:
        if s.kind == "log" and s.score > top.get(s.service, (0.0, 0.0))[0]:
            top[s.service] = (s.score, s.z)
    return top


def test_an_early_exit_outweighs_the_errors_it_causes_in_its_caller() -> None:
    top = _top()
    price_score, price_z = top["price"]
    travel_score, travel_z = top["travel"]
    # the stopped statement is the stronger change (larger |z|) and weighs as an error of that z
    assert price_z < 0 < travel_z < -price_z
    assert math.isclose(price_score, math.log1p(-price_z))
    assert price_score > travel_score


def test_without_the_switch_the_fall_is_discounted_below_the_callers_errors() -> None:
    off = DEFAULT_OPTIONS.with_(stopped_full_weight=False)
    top = _top(off)
    assert top["price"][0] < top["travel"][0]

"""A stopped code path weighs as an error rise of the same z (patterns._shifts, stopped_full_weight)."""

from __future__ import annotations

import math

from opsagent.analysis.channels import event_shifts
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.split import Split
from opsagent.domain import EvidenceBundle, LogRecord

from ..support.log_bundles import lines_every, log_bundle

SPLIT = 600.0
END = 900.0


def _bundle() -> EvidenceBundle:
    """``price`` keeps serving its requests but stops writing one statement it wrote on each of
    them (an exception skips it); ``travel``, its caller, fails on what it got back and writes a
    few more error lines than before."""
    logs: list[LogRecord] = []
    for k in range(6):
        logs += lines_every("price", f"price step{chr(97 + k)} handled", 0, END, 10.0)
        logs += lines_every("travel", f"travel step{chr(97 + k)} handled", 0, END, 10.0)
    logs += lines_every("price", "price query route and train type", 0, SPLIT, 20.0)
    logs += lines_every("travel", "ERROR servlet service failed", 0, SPLIT, 120.0)
    logs += lines_every("travel", "ERROR servlet service failed", SPLIT, END, 20.0)
    return log_bundle("rec-stopped", logs, END, SPLIT + 30.0)


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

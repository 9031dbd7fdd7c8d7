"""Handlers cut short: a service's operation that stopped taking steps it took on every request.

A changed return value or an early exit in the middle of a handler moves no metric and writes no
log line; what it changes is the shape of the handler's traces. The steps after the exit point (the
child spans the handler opened on every request: a call to another service, an internal stage) are
no longer there, while the handler itself keeps being called.

Counting events per period (``patterns``) cannot see this when the recording barely reaches back
before the fault: it compares how often a step occurs with the period's exposure, and a normal
period of a few seconds is no exposure at all. The handler's own spans are a better denominator:
each request either took the step or did not. So, per (service, operation) and per regular step
(a child operation present in at least ``STEP_SHARE`` of the handler's spans before the change),
the handler's spans in time order are a sequence of took / skipped. The change point is the split
of that sequence, at or after the events' split (``patterns.pattern_split``), that separates
"took it" from "skipped it" most sharply (the 2x2 likelihood-ratio statistic of before/after by
took/skipped, as a signed root). A step must be taken at most half as often after the change
(``patterns.stopped_code_path``) and the change must pass ``patterns.MIN_Z``.

A handler that stops part-way because a callee failed (the exception propagates and skips the rest)
is a victim, not a cause. Spans below which another service's span failed are therefore left out
of the sequence: only requests that completed without a failure below them testify that the
handler itself skipped its steps. Error-handler children (``patterns._error_operation``) are not
steps: fewer of them is a failure ending.

A handler's stopped steps are one code path, so each handler gives one event (its sharpest step,
with the other steps that stopped at the same request listed), of kind ``operation``, weighed as
a stopped code path: as an error event that fell (``DECREASE_WEIGHT``), as stopped call edges are.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from opsagent.analysis.patterns import (
    ALERT_LEAD_SECONDS,
    DECREASE_WEIGHT,
    MIN_RATE_RATIO,
    MIN_Z,
    PRIOR,
    PatternShift,
    error_operation,
)
from opsagent.domain import Span

# A child operation present in at least this share of a handler's spans before the change is one
# of its regular steps. Optional steps (a call made for some requests only: ads shown on some
# pages) come and go with the request mix; a step taken on nearly every request that stops is a
# changed code path. Measured on the Nezha development split (AC@1/AC@3, Online Boutique | Train
# Ticket): 0.5 0.88/0.96 | 0.89/0.96; 0.75 0.88/0.96 | 0.89/0.96; 0.9 and 0.95 0.92/0.96 |
# 0.93/0.96. Below 0.9, calls made for most but not all requests thin out with the load mix.
STEP_SHARE = 0.9
# Requests a handler must have served on each side of the change: fewer is no sequence to split.
# Neither bound is critical: 3/2 and 10/5 give the same figures on the development split.
MIN_BEFORE = 5
MIN_AFTER = 3
# The fault's own code path stops with the fault: the change must come within the alert's lead
# either side of the alert, i.e. within twice the lead after the events' split. Later changes are
# the incident's aftermath (an empty result set, retries, the next request mix): allowing changes
# up to the event horizon found a handler three minutes in that outranked a Train Ticket cause
# (AC@1 0.93 -> 0.89); Online Boutique is the same either way.
CHANGE_WINDOW_SECONDS = 2 * ALERT_LEAD_SECONDS

Step = tuple[str, str]


@dataclass(frozen=True)
class _Handler:
    service: str
    operation: str
    starts: npt.NDArray[np.float64]
    steps: list[frozenset[Step]]

    def took(self, step: Step) -> npt.NDArray[np.bool_]:
        return np.fromiter((step in s for s in self.steps), dtype=np.bool_, count=len(self.steps))


def _xlogx(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, x * np.log(safe), 0.0)


def g_statistic_z(
    took_before: npt.NDArray[np.float64],
    before: npt.NDArray[np.float64],
    took_after: npt.NDArray[np.float64],
    after: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Root of the 2x2 likelihood-ratio (G) statistic of took/skipped, before and after a change.

    Unlike the conditional binomial of event counts (``patterns.binomial_z``), the exposure is
    known here (every request of the handler either took the step or did not), so the requests
    that skipped it are evidence too.
    """
    a, b = took_before, before - took_before
    c, d = took_after, after - took_after
    g = (
        _xlogx(a)
        + _xlogx(b)
        + _xlogx(c)
        + _xlogx(d)
        - _xlogx(a + b)
        - _xlogx(c + d)
        - _xlogx(a + c)
        - _xlogx(b + d)
        + _xlogx(a + b + c + d)
    )
    return np.sqrt(np.maximum(2.0 * g, 0.0))


def _failed_below(spans: list[Span], by_id: dict[str, Span]) -> set[str]:
    """Span ids below which (in their trace) a span of another service failed or handled an error."""
    marked: set[str] = set()
    for failed in spans:
        if not (failed.error or error_operation(failed.operation)):
            continue
        parent = by_id.get(failed.parent_id or "")
        while parent is not None and parent.span_id not in marked:
            if parent.service != failed.service:
                marked.add(parent.span_id)
            parent = by_id.get(parent.parent_id or "")
    return marked


def _handlers(spans: list[Span], start: float, end: float, cut: float) -> list[_Handler]:
    """Per (service, operation) that opens child spans and served requests in the change window:
    its spans in [start, end) with their steps."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str, set[Step]] = defaultdict(set)
    parents: set[tuple[str, str]] = set()
    for s in spans:
        parent = by_id.get(s.parent_id or "")
        if parent is not None and not error_operation(s.operation):
            children[parent.span_id].add((s.service, s.operation))
            parents.add((parent.service, parent.operation))
    # only operations with requests in the change window can change there; skipping the rest
    # first keeps the cost to the handlers of the minute around the alert
    window = (cut, cut + CHANGE_WINDOW_SECONDS)
    active = {(s.service, s.operation) for s in spans if window[0] <= s.start < window[1]} & parents
    skipped = _failed_below(spans, by_id)
    grouped: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in sorted(spans, key=attrgetter("start")):  # one sort: every group comes out in time order
        key = (s.service, s.operation)
        if key in active and start <= s.start < end and s.span_id not in skipped:
            grouped[key].append(s)
    empty: frozenset[Step] = frozenset()
    return [
        _Handler(
            service,
            operation,
            np.array([s.start for s in group], dtype=np.float64),
            [frozenset(children[s.span_id]) if s.span_id in children else empty for s in group],
        )
        for (service, operation), group in sorted(grouped.items())
        if len(group) >= MIN_BEFORE + MIN_AFTER
    ]


def _candidates(handler: _Handler, cut: float) -> npt.NDArray[np.int64]:
    """Positions a change may split the handler's requests at: in the change window, with enough
    requests either side, and where the requests after take fewer steps on average than those
    before (cut short, not switched: a request that calls one service instead of another has
    changed its mix, not stopped part-way)."""
    n = len(handler.steps)
    positions = np.arange(n)
    allowed = (handler.starts >= cut) & (handler.starts < cut + CHANGE_WINDOW_SECONDS)
    allowed &= (positions >= MIN_BEFORE) & (positions <= n - MIN_AFTER)
    sizes = np.concatenate([[0], np.cumsum([len(s) for s in handler.steps])])
    k = positions[allowed]
    fewer: npt.NDArray[np.bool_] = (sizes[n] - sizes[k]) / (n - k) < sizes[k] / k
    return k[fewer].astype(np.int64)


@dataclass(frozen=True)
class _Change:
    z: float
    at: int  # position of the first request after the change
    took_before: int
    took_after: int


def _sharpest_change(took: npt.NDArray[np.bool_], candidates: npt.NDArray[np.int64]) -> _Change | None:
    """The split among ``candidates`` at which a regular step of ``took`` stopped most sharply.

    A regular step was taken by at least ``STEP_SHARE`` of the requests before the split; it
    stopped when its share after is at most ``1 / MIN_RATE_RATIO`` of that (the bar of
    ``patterns.stopped_code_path``).
    """
    n = len(took)
    cum = np.concatenate([[0], np.cumsum(took)]).astype(np.float64)
    before = candidates.astype(np.float64)
    after = n - before
    took_before = cum[candidates]
    took_after = cum[n] - took_before
    ratio = ((took_after + PRIOR) / after) / ((took_before + PRIOR) / before)
    ok = (took_before >= STEP_SHARE * before) & (ratio <= 1.0 / MIN_RATE_RATIO)
    if not ok.any():
        return None
    z = np.where(ok, g_statistic_z(took_before, before, took_after, after), -1.0)
    i = int(np.argmax(z))
    return _Change(float(z[i]), int(candidates[i]), int(took_before[i]), int(took_after[i]))


def _stopped_steps(handler: _Handler, at: int) -> list[Step]:
    """Every regular step that stopped at the change (one code path: the steps after the exit)."""
    candidates = np.array([at], dtype=np.int64)
    steps = sorted(set().union(*handler.steps[:at]))
    return [step for step in steps if _sharpest_change(handler.took(step), candidates) is not None]


def _handler_change(handler: _Handler, cut: float) -> _Change | None:
    candidates = _candidates(handler, cut)
    if not len(candidates):
        return None
    best: _Change | None = None
    for step in sorted(set().union(*handler.steps)):
        change = _sharpest_change(handler.took(step), candidates)
        if change is not None and (best is None or change.z > best.z):
            best = change
    return best


def truncated_handlers(
    spans: Iterable[Span], normal_start: float, cut: float, end: float
) -> list[PatternShift]:
    """Handlers whose regular steps stopped at a change soon after ``cut``, strongest first.

    The handlers' requests in [normal_start, end) are read: those before the change are the side
    that took the step, those after it up to ``end`` the side that skipped it.
    """
    out: list[PatternShift] = []
    for handler in _handlers(list(spans), normal_start, end, cut):
        change = _handler_change(handler, cut)
        if change is None or change.z < MIN_Z:
            continue
        before, after = change.at, len(handler.steps) - change.at
        names = ", ".join(
            op if svc == handler.service else f"{svc} {op}" for svc, op in _stopped_steps(handler, change.at)
        )
        out.append(
            PatternShift(
                service=handler.service,
                kind="operation",
                key=f"{handler.operation} stopped taking {names}",
                normal_count=change.took_before,
                incident_count=change.took_after,
                expected=change.took_before * after / before,
                z=-change.z,
                score=math.log1p(change.z) * DECREASE_WEIGHT,
                error=False,
                first_seen=float(handler.starts[change.at]),
                relative_ratio=((change.took_after + PRIOR) / after)
                / ((change.took_before + PRIOR) / before),
            )
        )
    out.sort(key=lambda s: (-s.score, s.service, s.key))
    return out

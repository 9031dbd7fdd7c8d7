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
(``patterns.stopped_code_path``), the change must pass ``patterns.MIN_Z``, and it must come with
the fault (``CHANGE_WINDOW_SECONDS``). After the change, the handler must take fewer steps per
request than before: cut short, not switched to other calls.

A handler that stops part-way because a callee failed (the exception propagates and skips the rest)
is a victim, not a cause. Spans below which another service's span failed are therefore left out
of the sequence: only requests that completed without a failure below them testify that the
handler itself skipped its steps. Error-handler children (``patterns.error_operation``) are not
steps: fewer of them is a failure ending.

A handler's stopped steps are one code path, so each handler gives one event (its sharpest step,
with the other steps that stopped at the same request listed), of kind ``handler``, weighed as
a stopped code path: as an error event that fell (``DECREASE_WEIGHT``), as stopped call edges are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsagent.analysis.events import (
    DECREASE_WEIGHT,
    MIN_Z,
    PRIOR,
    PatternShift,
    error_operation,
    stopped_code_path,
)
from opsagent.analysis.spantable import SpanTable
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
# The fault's own code path stops with the fault: the sharpest change after the events' split
# counts only when it comes within a minute after the events' split (twice the events' lead before a
# recorded alert, so within that lead either side of the alert). Later changes are the incident's aftermath (an empty result set, retries,
# the next request mix). Measured on the Nezha development split: 60 s and 120 s give the same
# figures; up to the event horizon (300 s), a handler changing three minutes in outranked a Train
# Ticket cause (AC@1 0.93 -> 0.89); Online Boutique is the same either way.
CHANGE_WINDOW_SECONDS = 60.0

Step = tuple[str, str]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Handler:
    """One (service, operation)'s requests in time order, and which of its steps each one took."""

    service: str
    operation: str
    starts: npt.NDArray[np.float64]
    sizes: IntArray  # distinct steps per request
    took: dict[Step, BoolArray]  # per step ever taken: which requests took it


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


def _failed_below(t: SpanTable, failed_spans: BoolArray) -> BoolArray:
    """Spans below which (in their trace) a span of another service is in ``failed_spans``."""
    marked = np.zeros(t.n, dtype=np.bool_)
    parent, service = t.parent.tolist(), t.service.tolist()
    for failed in np.flatnonzero(failed_spans).tolist():
        seen: set[int] = set()  # a malformed trace can loop
        p = parent[failed]
        while p >= 0 and p not in seen:
            seen.add(p)
            if service[p] != service[failed]:
                marked[p] = True
            p = parent[p]
    return marked[t.canon]


def _distinct(codes: IntArray) -> IntArray:
    """The distinct codes in ascending order, as ``np.unique`` gives them: by sorting, which for
    ~40k integers took a quarter of the time of ``np.unique``'s hash table (numpy 2.4)."""
    ordered = np.sort(codes)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered


def _handlers(spans: list[Span], start: float, end: float, cut: float) -> list[_Handler]:
    """Per (service, operation) that opens child spans and served requests in the change window:
    its requests in [start, end) that no failure below explains, with the steps each one took."""
    t = SpanTable.of(spans)
    keys, key = t.operations
    k = len(keys)
    error_handler = np.array([error_operation(op) for _, op in keys], dtype=np.bool_)[key]
    # a step is a child span's (service, operation), error handlers aside; one code per
    # (parent span, step) pair, each pair once however often the request took the step
    child = (t.parent >= 0) & ~error_handler
    pairs = _distinct(t.parent[child] * k + key[child])
    pair_parent, pair_step = pairs // k, pairs % k
    sizes = np.bincount(pair_parent, minlength=t.n)
    # only operations with requests in the change window can change there
    in_window = (t.start >= cut) & (t.start < cut + CHANGE_WINDOW_SECONDS)
    active = np.zeros(k, dtype=np.bool_)
    active[key[in_window]] = True
    has_steps = np.zeros(k, dtype=np.bool_)
    has_steps[key[pair_parent]] = True
    eligible = (
        (active & has_steps)[key]
        & (t.start >= start)
        & (t.start < end)
        & ~_failed_below(t, t.error | error_handler)
    )
    rows = np.flatnonzero(eligible)
    rows = rows[np.lexsort((t.start[rows], key[rows]))]  # by handler, then time
    # Each request's (step) pairs, found once for all handlers: ``pairs`` is sorted by parent, so a
    # request's pairs are one slice of it. A looked-up membership test per handler over all pairs
    # cost more than the rest of the analysis.
    members_all = t.canon[rows]
    lo = np.searchsorted(pair_parent, members_all, "left")
    count = np.searchsorted(pair_parent, members_all, "right") - lo
    ends = np.cumsum(count)
    entry_row = np.repeat(np.arange(len(rows)), count)  # position in ``rows`` of each entry
    entry_step = pair_step[np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - count - lo, count)]
    out: list[_Handler] = []
    bounds = np.flatnonzero(np.diff(key[rows])) + 1
    for first, last in zip([0, *bounds.tolist()], [*bounds.tolist(), len(rows)], strict=True):
        if last - first < MIN_BEFORE + MIN_AFTER:
            continue
        group = rows[first:last]
        members = members_all[first:last]
        e0 = int(ends[first - 1]) if first else 0
        e1 = int(ends[last - 1])
        steps, inverse = np.unique(entry_step[e0:e1], return_inverse=True)
        took_matrix = np.zeros((len(steps), last - first), dtype=np.bool_)
        took_matrix[inverse, entry_row[e0:e1] - first] = True
        took = {keys[step]: took_matrix[i] for i, step in enumerate(steps.tolist())}
        service, operation = keys[int(key[group[0]])]
        out.append(_Handler(service, operation, t.start[group], sizes[members], took))
    return out


def _candidates(handler: _Handler, cut: float) -> IntArray:
    """Positions a change may split the handler's requests at: from ``cut`` on, with enough
    requests either side, and where the requests after take fewer steps on average than those
    before (cut short, not switched: a request that calls one service instead of another has
    changed its mix, not stopped part-way)."""
    n = len(handler.starts)
    positions = np.arange(n)
    allowed = handler.starts >= cut
    allowed &= (positions >= MIN_BEFORE) & (positions <= n - MIN_AFTER)
    sizes = np.concatenate([[0], np.cumsum(handler.sizes)])
    k = positions[allowed]
    fewer: BoolArray = (sizes[n] - sizes[k]) / (n - k) < sizes[k] / k
    return k[fewer].astype(np.int64)


@dataclass(frozen=True)
class _Change:
    z: float
    at: int  # position of the first request after the change
    took_before: int
    took_after: int
    ratio: float  # the step's share of requests after over its share before (add-half smoothed)


def _sharpest_change(took: BoolArray, candidates: IntArray) -> _Change | None:
    """The split among ``candidates`` at which a regular step of ``took`` stopped most sharply.

    A regular step was taken by at least ``STEP_SHARE`` of the requests before the split; it
    stopped when its share after over its share before passes ``patterns.stopped_code_path``.
    """
    n = len(took)
    cum = np.concatenate([[0], np.cumsum(took)]).astype(np.float64)
    before = candidates.astype(np.float64)
    after = n - before
    took_before = cum[candidates]
    took_after = cum[n] - took_before
    ratio = ((took_after + PRIOR) / after) / ((took_before + PRIOR) / before)
    stopped = np.fromiter(map(stopped_code_path, ratio.tolist()), dtype=np.bool_, count=len(ratio))
    ok = (took_before >= STEP_SHARE * before) & stopped
    if not ok.any():
        return None
    z = np.where(ok, g_statistic_z(took_before, before, took_after, after), -1.0)
    i = int(np.argmax(z))
    return _Change(float(z[i]), int(candidates[i]), int(took_before[i]), int(took_after[i]), float(ratio[i]))


def _stopped_steps(handler: _Handler, at: int) -> list[Step]:
    """Every regular step that stopped at the change (one code path: the steps after the exit)."""
    candidates = np.array([at], dtype=np.int64)
    return sorted(
        step for step, took in handler.took.items() if _sharpest_change(took, candidates) is not None
    )


def _handler_change(handler: _Handler, cut: float) -> _Change | None:
    """The handler's sharpest stopped step after ``cut``, if that change came within the window."""
    candidates = _candidates(handler, cut)
    if not len(candidates):
        return None
    best: _Change | None = None
    for _, took in sorted(handler.took.items()):
        change = _sharpest_change(took, candidates)
        if change is not None and (best is None or change.z > best.z):
            best = change
    if best is None or handler.starts[best.at] >= cut + CHANGE_WINDOW_SECONDS:
        return None
    return best


def truncated_handlers(
    spans: Iterable[Span], normal_start: float, cut: float, end: float
) -> list[PatternShift]:
    """Handlers whose regular steps stopped at a change soon after ``cut``, strongest first.

    The handlers' requests in [normal_start, end) are read: those before the change are the side
    that took the step, those after it up to ``end`` the side that skipped it.
    """
    out: list[PatternShift] = []
    for handler in _handlers(spans if isinstance(spans, list) else list(spans), normal_start, end, cut):
        change = _handler_change(handler, cut)
        if change is None or change.z < MIN_Z:
            continue
        before, after = change.at, len(handler.starts) - change.at
        names = ", ".join(
            op if svc == handler.service else f"{svc} {op}" for svc, op in _stopped_steps(handler, change.at)
        )
        out.append(
            PatternShift(
                service=handler.service,
                kind="handler",
                key=f"{handler.operation}: {names}",
                normal_count=change.took_before,
                incident_count=change.took_after,
                expected=change.took_before * after / before,
                z=-change.z,
                score=math.log1p(change.z) * DECREASE_WEIGHT,
                error=False,
                first_seen=float(handler.starts[change.at]),
                relative_ratio=change.ratio,
                requests=(before, after),
            )
        )
    out.sort(key=lambda s: (-s.score, s.service, s.key))
    return out

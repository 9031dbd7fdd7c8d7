"""Counting events per period: which log and span events each service had, normal versus incident.

``Periods`` says which records are normal and which the incident (the window's split plus a
reference period known to be normal); ``count_logs`` here and ``span_counts.count_spans`` count each
service's events on both sides into ``Counts``; ``origins`` places trace-linked error lines in their call trees, to tell
where a failure originated from where it was only echoed. ``patterns.py`` turns the counts into shifts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from typing import TypeVar

import numpy as np

from opsagent.analysis.events import EventKind, error_operation
from opsagent.analysis.logs import line_templates
from opsagent.analysis.spantable import SpanTable
from opsagent.domain import LogRecord, Span

_R = TypeVar("_R", LogRecord, Span)


@dataclass
class Counts:
    normal: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))
    incident: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))
    first: dict[tuple[str, EventKind, str], float] = field(default_factory=dict)
    errors: set[tuple[str, EventKind, str]] = field(default_factory=set)
    examples: dict[tuple[str, EventKind, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    echoes: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))
    # the traffic an event rides on, as (service, span operation): for a log event the span its
    # lines were written in (where lines carry one), for a span operation its parent span's in the
    # same service
    hosts: dict[tuple[str, EventKind, str], dict[tuple[str, str], int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    # origin events in the line's own service: the other services the incident's failing requests
    # called below the line, none of which failed or changed there (``origins``)
    answered: dict[tuple[str, EventKind, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    # the reference period's share of ``normal``: its counts on their own
    reference: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: tuple[str, EventKind, str], t: float, normal: bool, error: bool, example: str) -> None:
        if error:
            self.errors.add(key)
        if normal:
            self.normal[key] += 1
            return
        self.incident[key] += 1
        if key not in self.first or t < self.first[key]:
            self.first[key] = t
        if example and len(self.examples[key]) < 2:
            self.examples[key].append(example[:300])


@dataclass(frozen=True)
class ErrorLine:
    """An error log line written inside a known span."""

    t: float
    service: str
    span_id: str
    template: str
    normal: bool


@dataclass(frozen=True)
class Periods:
    """Which records count as normal and which as the incident.

    In-window records before ``split`` are normal, those from it on are the incident. Records of a
    reference period (known to be normal) are normal as well, wherever they fall outside the
    incident part: a reference that overlaps the incident is not normal for it. One that falls in
    the window's normal part (a fault-free minute recorded among the minutes before the alert) is
    still normal; a record the window also holds is counted once (``_held``). The reference *adds*
    to the in-window normal period rather than replacing it: alone, one fault-free minute recorded
    apart differs from any incident's minutes in its request mix, and that mix then reads as change
    (measured on Nezha Train Ticket, pattern channel alone, AC@1/AC@3: in-window normal 0.32/0.54,
    reference only 0.18/0.32, both 0.39/0.71).
    """

    lo: float
    split: float
    hi: float

    def side(self, t: float, reference: bool) -> bool | None:
        """True: normal, False: incident, None: not counted."""
        if reference:
            return True if t < self.split or t > self.hi else None
        if t < self.lo or t > self.hi:
            return None
        return t < self.split

    def in_window_normal(self, t: float) -> bool:
        return self.lo <= t < self.split


def held_in_window(
    reference: list[_R],
    window: list[_R],
    periods: Periods,
    identity: Callable[[_R], Hashable],
    time: Callable[[_R], float],
) -> set[Hashable]:
    """Identities of the reference records that the window holds as well (where the two overlap).

    Only the window's normal part can hold them, and only its records whose identity a reference
    record shares are returned: callers test reference records against the set.
    """
    if not any(in_window_normal(periods, list(map(time, reference)))):
        return set()
    candidates = {identity(r) for r in reference}
    in_normal = compress(window, in_window_normal(periods, list(map(time, window))))
    return {key for key in map(identity, in_normal) if key in candidates}


def in_window_normal(periods: Periods, times: list[float]) -> list[bool]:
    """``periods.in_window_normal`` of each time, computed on an array."""
    t = np.asarray(times, dtype=np.float64)
    inside: list[bool] = ((t >= periods.lo) & (t < periods.split)).tolist()
    return inside


def _log_identity(record: LogRecord) -> Hashable:
    return (record.timestamp, record.service, record.message)


def count_logs(
    logs: list[LogRecord], periods: Periods, reference: list[LogRecord], owners: dict[str, tuple[str, str]]
) -> tuple[Counts, list[ErrorLine]]:
    """Each service's log events per period, and the trace-linked error lines. ``owners``: each
    span id's (service, operation) (``span_owners``), for the operation a line was written in."""
    counts = Counts()
    held = held_in_window(reference, logs, periods, _log_identity, attrgetter("timestamp"))
    linked: list[ErrorLine] = []
    # one templating of both lists, so the reference and the window share their templates
    templates = line_templates(reference, logs)
    for is_ref, records, offset in ((True, reference, 0), (False, logs, len(reference))):
        for i, rec in enumerate(records):
            normal = periods.side(rec.timestamp, is_ref)
            if normal is None:
                continue
            msg = rec.message
            tpl, line_error = templates[offset + i]
            key: tuple[str, EventKind, str] = (rec.service, "log", tpl)
            if is_ref:
                counts.reference[key] += 1
                if held and _log_identity(rec) in held:
                    continue  # the window's own list counts it as normal
            # trace-linked error lines: their place in the call tree says whether they echo a failure
            if line_error and rec.span_id:
                linked.append(ErrorLine(rec.timestamp, rec.service, rec.span_id, tpl, normal))
            counts.add(key, rec.timestamp, normal, line_error, msg)
            host = owners.get(rec.span_id) if rec.span_id else None
            if host is not None:
                counts.hosts[key][(rec.service, host[1])] += 1
    return counts, linked


@dataclass(frozen=True)
class Changed:
    """What changed, for the origin walk: (service, span operation) pairs whose own events rose (the
    operation's spans, or a statement written in it), and services any of whose events rose (the
    walk's coarser reading, ``ChannelOptions.origin_by_operation`` off)."""

    operations: frozenset[tuple[str, str]] = frozenset()
    services: frozenset[str] = frozenset()

    def holds(self, service: str, operation: str) -> bool:
        return service in self.services or (service, operation) in self.operations


def origins(counts: Counts, linked: list[ErrorLine], table: SpanTable, changed: Changed) -> None:
    """Count where each trace-linked error line originated, and which lines echo one; in ``counts``.

    A line is an echo when a descendant span in another service failed (error status or an
    error-handler operation) or wrote an error line itself, or when a descendant span's own
    operation changed (``changed``): the deepest such service is then the origin. A service that
    changed elsewhere (a background error in another of its operations) is not blamed for a call
    the trace made to an operation of it that did not change: a wrong return value comes from the
    operation that was called. Otherwise the line's own service is. Origins are counted as events of kind ``origin`` of the blamed service,
    keyed by the error template they surface as (and where), so the normal period is counted alike.
    ``table``: the spans the lines were written in (the window's, and a reference period's).
    """
    if not linked or not table.n:
        return
    tree = _CallTree(table, linked)
    verdicts: dict[str, tuple[bool, str | None, set[str]]] = {}
    for line in linked:
        verdict = verdicts.get(line.span_id)
        if verdict is None:
            called: set[str] = set()
            echo, deepest = tree.walk(line.span_id, line.service, changed, called)
            verdict = verdicts[line.span_id] = (echo, deepest, called)
        echo, deepest, called = verdict
        log_key: tuple[str, EventKind, str] = (line.service, "log", line.template)
        if not line.normal and (echo or deepest is not None):
            counts.echoes[log_key] += 1
        if echo:
            continue
        where = line.service if deepest is None else deepest
        key = origin_key(line.template, None if deepest is None else line.service)
        counts.add((where, "origin", key), line.t, line.normal, True, "")
        if deepest is None and not line.normal:
            counts.answered[(where, "origin", key)].update(called)


def origin_key(template: str, surfaced_in: str | None) -> str:
    """The key of an origin event: its error line's template, and where the line surfaced when the
    origin was counted for another service (a callee the walk blamed)."""
    return template if surfaced_in is None else f"{template} (surfacing in {surfaced_in})"


_SURFACING = re.compile(r" \(surfacing in ([^()]*)\)$")


def origin_parts(key: str) -> tuple[str, str | None]:
    """``origin_key`` read back: (template, the service the line surfaced in, if not the origin's)."""
    surfacing = _SURFACING.search(key)
    return (key, None) if surfacing is None else (key[: surfacing.start()], surfacing.group(1))


class _CallTree:
    """The spans' call tree as arrays: each span id's children, and which ids failed.

    A window holds ~40k spans and a few hundred error lines to place: the tree is built by array
    operations (a dict of child lists took a Python step per span, most of the origin walk's time).
    A span id is its last occurrence among the spans (``canon``), as in a dict keyed by id; a span's
    children are the spans naming that id as their parent, in list order.
    """

    def __init__(self, table: SpanTable, linked: list[ErrorLine]) -> None:
        n = table.n
        index = table.index
        self._index = index
        canon = table.canon
        # children grouped by parent, each group in list order (a stable sort)
        order = np.argsort(table.parent, kind="stable")
        grouped = table.parent[order]
        positions = np.arange(n)
        self._first = np.searchsorted(grouped, positions, side="left").tolist()
        self._last = np.searchsorted(grouped, positions, side="right").tolist()
        self._order = order.tolist()
        self._canon = canon.tolist()
        self._service: list[str] = table.service_names
        # an operation's name says it handles errors or not, whichever span it is: one look per name
        operations = table.operation_names
        self._operation = operations
        handler = {op: error_operation(op) for op in set(operations)}
        bad = table.error | np.fromiter(map(handler.__getitem__, operations), np.bool_, n)
        failed = np.zeros(n, dtype=np.bool_)
        failed[canon[bad]] = True  # an id failed when any span of it did
        for line in linked:  # a span that wrote an error line failed too
            at = index.get(line.span_id)
            if at is not None:
                failed[at] = True
        self._failed: list[bool] = failed.tolist()

    def walk(
        self, span_id: str, service: str, changed: Changed, called: set[str] | None = None
    ) -> tuple[bool, str | None]:
        """(whether a descendant in another service failed, the deepest changed descendant service);
        ``called`` collects the other services the walk passed through."""
        start = self._index.get(span_id)
        if start is None:
            return False, None
        first, last, order, canon = self._first, self._last, self._order, self._canon
        services, failed, operations = self._service, self._failed, self._operation
        best: tuple[int, str] | None = None
        stack: list[tuple[int, int, str]] = [(start, 0, service)]
        seen = {start}
        while stack:
            at, depth, owner = stack.pop()
            for child in order[first[at] : last[at]]:
                own = canon[child]
                if own in seen:
                    continue
                seen.add(own)
                child_service = services[child]
                hop = depth + (child_service != owner)
                if child_service != service:
                    if called is not None:
                        called.add(child_service)
                    if failed[own]:
                        return True, None
                    if changed.holds(child_service, operations[child]) and (best is None or hop > best[0]):
                        best = (hop, child_service)
                stack.append((own, hop, child_service))
        return False, best[1] if best else None

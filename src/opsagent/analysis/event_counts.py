"""Counting events per period: which log and span events each service had, normal versus incident.

``Periods`` says which records are normal and which the incident (the window's split plus a
reference period known to be normal); ``count_logs`` and ``count_spans`` count each service's events
on both sides into ``Counts``; ``origins`` places trace-linked error lines in their call trees, to tell
where a failure originated from where it was only echoed. ``patterns.py`` turns the counts into shifts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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


def _held(
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


def _span_identity(span: Span) -> Hashable:
    return span.span_id


def count_logs(
    logs: list[LogRecord], periods: Periods, reference: list[LogRecord], owners: dict[str, tuple[str, str]]
) -> tuple[Counts, list[ErrorLine]]:
    """Each service's log events per period, and the trace-linked error lines. ``owners``: each
    span id's (service, operation) (``span_owners``), for the operation a line was written in."""
    counts = Counts()
    held = _held(reference, logs, periods, _log_identity, attrgetter("timestamp"))
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


def origins(counts: Counts, linked: list[ErrorLine], spans: list[Span], changed: set[str]) -> None:
    """Count where each trace-linked error line originated, and which lines echo one; in ``counts``.

    A line is an echo when a descendant span in another service failed (error status or an
    error-handler operation) or wrote an error line itself, or when a descendant service has changed
    events of its own (``changed``): the deepest such service is then the origin. Otherwise the
    line's own service is. Origins are counted as events of kind ``origin`` of the blamed service,
    keyed by the error template they surface as (and where), so the normal period is counted alike.
    """
    if not linked or not spans:
        return
    # mapped and zipped rather than an attribute lookup per span: a window holds ~40k spans
    ids = list(map(attrgetter("span_id"), spans))
    by_id = dict(zip(ids, spans, strict=True))
    children: dict[str, list[Span]] = defaultdict(list)
    for parent_id, s in zip(map(attrgetter("parent_id"), spans), spans, strict=True):
        if parent_id:
            children[parent_id].append(s)
    # an operation's name says it handles errors or not, whichever span it is: one look per name
    operations = list(map(attrgetter("operation"), spans))
    handler = {op: error_operation(op) for op in set(operations)}
    failed = {
        sid
        for sid, error, op in zip(ids, map(attrgetter("error"), spans), operations, strict=True)
        if error or handler[op]
    }
    failed |= {line.span_id for line in linked}
    verdicts: dict[str, tuple[bool, str | None]] = {}
    for line in linked:
        verdict = verdicts.get(line.span_id)
        if verdict is None:
            verdict = verdicts[line.span_id] = _walk(
                line.span_id, line.service, by_id, children, failed, changed
            )
        echo, deepest = verdict
        log_key: tuple[str, EventKind, str] = (line.service, "log", line.template)
        if not line.normal and (echo or deepest is not None):
            counts.echoes[log_key] += 1
        if echo:
            continue
        where = line.service if deepest is None else deepest
        via = "" if deepest is None else f" (surfacing in {line.service})"
        counts.add((where, "origin", f"{line.template}{via}"), line.t, line.normal, True, "")


def _walk(
    span_id: str,
    service: str,
    by_id: dict[str, Span],
    children: dict[str, list[Span]],
    failed: set[str],
    changed: set[str],
) -> tuple[bool, str | None]:
    """(whether a descendant in another service failed, the deepest changed descendant service)."""
    if span_id not in by_id:
        return False, None
    best: tuple[int, str] | None = None
    stack: list[tuple[str, int, str]] = [(span_id, 0, service)]
    seen = {span_id}
    while stack:
        sid, depth, owner = stack.pop()
        for child in children.get(sid, ()):
            if child.span_id in seen:
                continue
            seen.add(child.span_id)
            hop = depth + (child.service != owner)
            if child.service != service:
                if child.span_id in failed:
                    return True, None
                if child.service in changed and (best is None or hop > best[0]):
                    best = (hop, child.service)
            stack.append((child.span_id, hop, child.service))
    return False, best[1] if best else None


def span_owners(spans: list[Span]) -> dict[str, tuple[str, str]]:
    """Each span id's (service, operation); of spans sharing an id, the last one's (as a dict
    comprehension over the spans would keep). Mapped and zipped: a window holds up to ~100k spans."""
    pairs = zip(map(_service, spans), map(_operation, spans), strict=True)
    return dict(zip(map(_span_id, spans), pairs, strict=True))


_span_id = attrgetter("span_id")
_service = attrgetter("service")
_operation = attrgetter("operation")


def count_spans(
    spans: list[Span],
    periods: Periods,
    reference: list[Span],
    owners: tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]] | None = None,
) -> Counts:
    """``owners``: when the caller has them already, ``span_owners`` of ``spans``, and of ``spans``
    then ``reference`` (later ones winning); neither is changed."""
    counts = Counts()
    held = _held(reference, spans, periods, _span_identity, attrgetter("start"))
    reference = [s for s in reference if not held or s.span_id not in held]
    if not reference and spans:
        table = SpanTable.of(spans)
        if not np.isnan(table.start).any():
            _tally_table(counts, table, periods)
            return counts
    # each span's (service, operation), for its children's caller and host operation: the window's,
    # then the reference's, except those of the reference's spans the window holds (``held``)
    if owners is None:
        owner = span_owners(spans)
        if reference:
            owner = {**owner, **span_owners(reference)}
    else:
        window, owner = owners
        # a held id is the window's span: where the reference's span of that id differs, the
        # window's wins (the ids in ``held`` are in both)
        stale = {h: window[h] for h in held if isinstance(h, str) and owner[h] != window[h]}
        if stale:
            owner = {**owner, **stale}
    normal: list[Span] = []
    incident: list[Span] = []
    for is_ref, records in ((True, reference), (False, spans)):
        in_normal, in_incident = sides(periods, [s.start for s in records], is_ref)
        normal.extend(compress(records, in_normal))
        incident.extend(compress(records, in_incident))
    _tally_spans(counts, normal, owner, normal=True)
    _tally_spans(counts, incident, owner, normal=False)
    return counts


def sides(periods: Periods, times: list[float], reference: bool) -> tuple[list[bool], list[bool]]:
    """``periods.side`` of each time as two masks, (normal, incident), computed on an array."""
    t = np.asarray(times, dtype=np.float64)
    if reference:
        normal = (t < periods.split) | (t > periods.hi)
        return normal.tolist(), [False] * len(times)
    # comparisons with NaN are false in numpy as in Python: a NaN time counts, in the incident
    counted = ~((t < periods.lo) | (t > periods.hi))
    normal = counted & (t < periods.split)
    return normal.tolist(), (counted & ~normal).tolist()


# What a span's events depend on: (service, operation, parent span's service or None, error,
# parent span's operation or None).
_SpanKind = tuple[str, str, str | None, bool, str | None]


def _span_kinds(spans: list[Span], owner: dict[str, tuple[str, str]]) -> list[_SpanKind]:
    """Each span's kind; inline rather than a call per span (a window holds ~40k spans)."""
    if "" in owner:  # an empty parent id is no parent, even when a span has the empty id
        parents = [owner.get(pid) if pid else None for pid in map(attrgetter("parent_id"), spans)]
    else:  # nor is None, which is no span id
        parents = list(map(owner.get, map(attrgetter("parent_id"), spans)))
    return [
        (service, operation, None, error, None)
        if parent is None
        else (service, operation, parent[0], error, parent[1])
        for service, operation, error, parent in zip(
            map(_service, spans),
            map(_operation, spans),
            map(attrgetter("error"), spans),
            parents,
            strict=True,
        )
    ]


def _tally_spans(
    counts: Counts, members: list[Span], owner: dict[str, tuple[str, str]], normal: bool
) -> None:
    """Count the events of one period's spans into ``counts``, as ``Counts.add`` would one by one.

    A window holds up to ~100k spans but a few hundred kinds of span (``_SpanKind``): the kinds
    are counted, and each kind's events (``_span_events``) added once with its count. Span events
    keep no examples, so ``add`` would fill only counts, error flags and earliest incident times.
    """
    kinds = _span_kinds(members, owner)
    _tally_kinds(counts, list(Counter(kinds).items()), normal)
    if not normal:
        _first_times(counts.first, kinds, [s.start for s in members])


def _tally_kinds(counts: Counts, kinds: list[tuple[_SpanKind, int]], normal: bool) -> None:
    """Each kind's events, ``n`` times each, into ``counts`` (kinds in order of first appearance)."""
    tally = counts.normal if normal else counts.incident
    for kind, n in kinds:
        for key, error in _span_events(kind):
            tally[key] += n
            if error:
                counts.errors.add(key)
        service, operation, caller, _, host = kind
        if host is not None and caller == service:
            # a step of the service's own handler; under a caller's span the operation rides on
            # calls it does not control (their stop is the caller's code path)
            counts.hosts[(service, "operation", operation)][(service, host)] += n


def _tally_table(counts: Counts, table: SpanTable, periods: Periods) -> None:
    """``_tally_spans`` of the window's spans alone (no reference), from the span table: each span's
    kind as one integer (its (service, operation), its parent span's, its error flag), counted by
    array operations. The parent is the span table's, the last span with the parent's id, as in
    ``span_owners``; kinds are met in the same order, and their earliest times are the same."""
    pairs, pair = table.operations
    k = len(pairs)
    parent_pair = np.where(table.parent >= 0, pair[np.maximum(table.parent, 0)], -1)
    codes = (pair * (k + 1) + (parent_pair + 1)) * 2 + table.error.astype(np.int64)

    def kind(code: int) -> _SpanKind:
        rest, error = divmod(code, 2)
        own, parent = divmod(rest, k + 1)
        service, operation = pairs[own]
        if not parent:
            return (service, operation, None, bool(error), None)
        caller, host = pairs[parent - 1]
        return (service, operation, caller, bool(error), host)

    t = table.start
    counted = ~((t < periods.lo) | (t > periods.hi))
    normal = counted & (t < periods.split)
    for mask, is_normal in ((normal, True), (counted & ~normal, False)):
        members, times = codes[mask], t[mask]
        distinct, first, n = np.unique(members, return_index=True, return_counts=True)
        met = np.argsort(first, kind="stable")  # in order of first appearance, as a Counter
        _tally_kinds(
            counts,
            [(kind(c), m) for c, m in zip(distinct[met].tolist(), n[met].tolist(), strict=True)],
            is_normal,
        )
        if is_normal or not members.size:
            continue
        # each kind's earliest time (of equal ones the first), kinds by that time then position
        order = np.argsort(times, kind="stable")
        _, at = np.unique(members[order], return_index=True)
        earliest = order[at]
        earliest = earliest[np.lexsort((earliest, times[earliest]))]
        for i, code in zip(earliest.tolist(), members[earliest].tolist(), strict=True):
            stamp = float(times[i])
            for key, _ in _span_events(kind(code)):
                if key not in counts.first or stamp < counts.first[key]:
                    counts.first[key] = stamp


def _span_events(kind: _SpanKind) -> list[tuple[tuple[str, EventKind, str], bool]]:
    """The events (with their error flags) of a span of this kind: its operation; its call, when
    its parent span is in another service; its failure, when it failed."""
    service, operation, caller, failed, _ = kind
    err_op = error_operation(operation)
    events: list[tuple[tuple[str, EventKind, str], bool]] = [((service, "operation", operation), err_op)]
    if caller is not None and caller != service:
        events.append(((service, "call", f"{caller} -> {operation}"), err_op))
    if failed:
        events.append(((service, "error", operation), True))
    return events


def _first_times(
    first: dict[tuple[str, EventKind, str], float], kinds: list[_SpanKind], times: list[float]
) -> None:
    """Each event's earliest time into ``first``, as the running minimum of ``Counts.add`` keeps it.

    That is the smallest time and, of equal ones (0.0 and -0.0), the first in the list: each kind's
    first span in a stable time order, whose events are then set in that order. A NaN neither
    replaces nor is replaced in a running minimum, so with one the running minimum itself runs.
    """
    stamps = np.asarray(times, dtype=np.float64)
    if np.isnan(stamps).any():
        for kind, t in zip(kinds, times, strict=True):
            for key, _ in _span_events(kind):
                if key not in first or t < first[key]:
                    first[key] = t
        return
    order = np.argsort(stamps, kind="stable").tolist()
    # a dict keeps the last value written for a key: written in reverse, the first in time order
    earliest = dict(zip([kinds[i] for i in reversed(order)], reversed(order), strict=True))
    for kind, i in sorted(earliest.items(), key=lambda item: (times[item[1]], item[1])):
        for key, _ in _span_events(kind):
            if key not in first or times[i] < first[key]:
                first[key] = times[i]

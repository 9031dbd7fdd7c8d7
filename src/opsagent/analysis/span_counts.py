"""Counting span events per period: each span's operation, its call when its parent is in another
service, and its failure, normal versus incident (``event_counts`` counts the log lines).

A window holds up to ~100k spans but a few hundred kinds of span, so spans are counted by kind and
each kind's events added once with its count: from the span table that ``prepare`` built (joined
with a reference period's spans where there is one), by array operations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from itertools import compress
from operator import attrgetter

import numpy as np

from opsagent.analysis.event_counts import Counts, Periods, held_in_window
from opsagent.analysis.events import EventKind, error_operation
from opsagent.analysis.spantable import SpanTable
from opsagent.domain import Span


def _span_identity(span: Span) -> Hashable:
    return span.span_id


def span_owners(spans: list[Span]) -> dict[str, tuple[str, str]]:
    """Each span id's (service, operation); of spans sharing an id, the last one's (as a dict
    comprehension over the spans would keep). Mapped and zipped: a window holds up to ~100k spans."""
    pairs = zip(map(_service, spans), map(_operation, spans), strict=True)
    return dict(zip(map(_span_id, spans), pairs, strict=True))


def table_owners(table: SpanTable) -> dict[str, tuple[str, str]]:
    """``span_owners`` of a table's spans, from the columns the table has read already."""
    pairs = zip(table.service_names, table.operation_names, strict=True)
    return dict(zip(table.ids, pairs, strict=True))


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
    held = held_in_window(reference, spans, periods, _span_identity, attrgetter("start"))
    if held:  # else the very list, whose joined table the error-origin walk reads too
        reference = [s for s in reference if s.span_id not in held]
    if spans:
        own = SpanTable.of(spans)
        # the reference's spans after the window's: of spans sharing an id the last one's owner
        # counts, as in the owners below (a held id's reference spans are left out above)
        table = SpanTable.joined(own, reference) if reference else own
        if not np.isnan(table.start).any():
            _tally_table(counts, table, periods, own.n)
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


def _tally_table(counts: Counts, table: SpanTable, periods: Periods, window: int) -> None:
    """``_tally_spans`` of the table's spans, the first ``window`` of them the window's and the rest
    a reference period's: each span's kind as one integer (its (service, operation), its parent
    span's, its error flag), counted by array operations. The parent is the span table's, the last
    span with the parent's id, as in ``span_owners``; kinds are met in the same order (the
    reference's normal spans before the window's), and their earliest times are the same."""
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

    t, ref_t = table.start[:window], table.start[window:]
    counted = ~((t < periods.lo) | (t > periods.hi))
    normal = counted & (t < periods.split)
    # a reference span is normal outside the window's incident (``sides``), never the incident's
    ref_normal = (ref_t < periods.split) | (ref_t > periods.hi)
    own, ref = codes[:window], codes[window:]
    sides = (
        (np.concatenate([ref[ref_normal], own[normal]]), None, True),
        (own[counted & ~normal], t[counted & ~normal], False),
    )
    for members, times, is_normal in sides:
        distinct, first, n = np.unique(members, return_index=True, return_counts=True)
        met = np.argsort(first, kind="stable")  # in order of first appearance, as a Counter
        _tally_kinds(
            counts,
            [(kind(c), m) for c, m in zip(distinct[met].tolist(), n[met].tolist(), strict=True)],
            is_normal,
        )
        if times is None or not members.size:
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

"""Spans as columns, for array arithmetic instead of a Python loop over every span.

A window holds up to ~100k spans: at that size a Python loop per span, per pass, cost more than
everything else the engine does with them. Each column is read in one C-level pass
(``map`` over each span's field dict).
"""

from __future__ import annotations

from functools import cached_property
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from opsagent.domain import Span

IntArray = npt.NDArray[np.int64]


class SpanTable:
    """Span columns. Span ids are indexed by their last occurrence (a duplicate id is one span, as
    in a dict keyed by id): ``canon`` is the index each span's own id resolves to, ``parent`` that
    of its parent (-1 without one, or when the parent is not among the spans).
    """

    def __init__(self, spans: list[Span]) -> None:
        # the field values straight from each span's __dict__: an item lookup in a dict is cheaper
        # than an attribute lookup on the model (~40% of reading the columns)
        fields = list(map(vars, spans))
        self._fill(
            spans,
            fields,
            list(map(itemgetter("span_id"), fields)),
            list(map(itemgetter("parent_id"), fields)),
            list(map(itemgetter("service"), fields)),
            np.fromiter(map(itemgetter("duration_ms"), fields), np.float64, len(fields)),
            np.fromiter(map(itemgetter("start"), fields), np.float64, len(fields)),
            np.fromiter(map(itemgetter("error"), fields), np.bool_, len(fields)),
        )

    @classmethod
    def joined(cls, first: SpanTable, more: list[Span]) -> SpanTable:
        """The table of ``first``'s spans followed by ``more``: ``first``'s columns are reused, only
        ``more`` is read (the span counts and the error-origin walk read the window's spans and a
        reference period's together, and the window's table is built already). Reused when it was
        just built for the very two (held, so their ids cannot be reused) at the same lengths."""
        global _last_joined
        last = _last_joined
        if last is not None and last[0] is first and last[1] is more and last[2].n == first.n + len(more):
            return last[2]
        extra = cls(more)
        table = cls.__new__(cls)
        table._fill(
            [*first._spans, *more],
            first._fields + extra._fields,
            first.ids + extra.ids,
            first.parent_ids + extra.parent_ids,
            first.service_names + extra.service_names,
            np.concatenate([first.duration, extra.duration]),
            np.concatenate([first.start, extra.start]),
            np.concatenate([first.error, extra.error]),
        )
        _last_joined = (first, more, table)
        return table

    def _fill(
        self,
        spans: list[Span],
        fields: list[dict[str, Any]],
        ids: list[str],
        parents: list[str | None],
        names: list[str],
        duration: npt.NDArray[np.float64],
        start: npt.NDArray[np.float64],
        error: npt.NDArray[np.bool_],
    ) -> None:
        self._spans = spans
        self._fields = fields
        self.n = n = len(spans)
        self.ids = ids
        self.parent_ids = parents
        # a later duplicate overwrites an earlier one: ids index their last occurrence
        index: dict[str | None, int] = dict(zip(ids, range(n), strict=True))
        self.index = index
        # without repeated ids (the usual case) each span is its id's last occurrence
        self.canon: IntArray = (
            np.arange(n, dtype=np.int64)
            if len(index) == n
            else np.fromiter(map(index.__getitem__, ids), np.int64, n)
        )
        if "" in index:  # an empty parent id is no parent, even when a span has the empty id
            self.parent: IntArray = np.fromiter((index.get(p, -1) if p else -1 for p in parents), np.int64, n)
        else:  # None is no span id either
            self.parent = np.fromiter(map(index.get, parents, repeat(-1)), np.int64, n)
        self.service_names = names
        # services numbered in order of first appearance
        self.services = list(dict.fromkeys(names))
        code = {name: i for i, name in enumerate(self.services)}
        self.service: IntArray = np.fromiter(map(code.__getitem__, names), np.int64, n)
        self.duration = duration
        self.start = start
        self.error = error

    @classmethod
    def of(cls, spans: list[Span]) -> SpanTable:
        """The table of ``spans``, reused when it was just built for the same list: the trace series
        (prepare), the event onset (split), the span counts, the error-origin walk and the handlers
        (channels) read one incident's spans, and building the columns is most of each one's cost.
        Reused only for the very list (held, so its id cannot be reused) at the same length; the
        engine never changes a bundle's spans."""
        global _last
        last = _last
        if last is not None and last._spans is spans and last.n == len(spans):
            return last
        _last = table = cls(spans)
        return table

    @cached_property
    def operation_names(self) -> list[str]:
        """Each span's operation name."""
        return list(map(itemgetter("operation"), self._fields))

    @cached_property
    def operations(self) -> tuple[list[tuple[str, str]], IntArray]:
        """The distinct (service, operation) pairs in order of first appearance, and each span's
        number among them. Read on demand: only the handler analysis needs operations."""
        names = self.operation_names
        distinct = list(dict.fromkeys(names))
        code = {name: i for i, name in enumerate(distinct)}
        # one integer per pair (service code, operation code) instead of a tuple per span
        pair = self.service * len(distinct) + np.fromiter(map(code.__getitem__, names), np.int64, self.n)
        values, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
        order = np.argsort(first)  # the pairs in order of first appearance
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        keys = [
            (self.services[v // len(distinct)], distinct[v % len(distinct)]) for v in values[order].tolist()
        ]
        return keys, rank[inverse.reshape(-1)]


_last: SpanTable | None = None
_last_joined: tuple[SpanTable, list[Span], SpanTable] | None = None

"""Spans as columns, for array arithmetic instead of a Python loop over every span.

A window holds up to ~100k spans: at that size a Python loop per span, per pass, cost more than
everything else the engine does with them. Each column is read in one C-level pass
(``map`` over each span's field dict).
"""

from __future__ import annotations

from functools import cached_property
from itertools import repeat
from operator import itemgetter

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
        self._spans = spans
        self.n = n = len(spans)
        # the field values straight from each span's __dict__: an item lookup in a dict is cheaper
        # than an attribute lookup on the model (~40% of reading the columns)
        fields = list(map(vars, spans))
        self._fields = fields
        ids: list[str] = list(map(itemgetter("span_id"), fields))
        # a later duplicate overwrites an earlier one: ids index their last occurrence
        index: dict[str | None, int] = dict(zip(ids, range(n), strict=True))
        # without repeated ids (the usual case) each span is its id's last occurrence
        self.canon: IntArray = (
            np.arange(n, dtype=np.int64)
            if len(index) == n
            else np.fromiter(map(index.__getitem__, ids), np.int64, n)
        )
        parents: list[str | None] = list(map(itemgetter("parent_id"), fields))
        if "" in index:  # an empty parent id is no parent, even when a span has the empty id
            self.parent: IntArray = np.fromiter((index.get(p, -1) if p else -1 for p in parents), np.int64, n)
        else:  # None is no span id either
            self.parent = np.fromiter(map(index.get, parents, repeat(-1)), np.int64, n)
        services: list[str] = list(map(itemgetter("service"), fields))
        # services numbered in order of first appearance
        self.services = list(dict.fromkeys(services))
        code = {name: i for i, name in enumerate(self.services)}
        self.service: IntArray = np.fromiter(map(code.__getitem__, services), np.int64, n)
        self.duration = np.fromiter(map(itemgetter("duration_ms"), fields), np.float64, n)
        self.start = np.fromiter(map(itemgetter("start"), fields), np.float64, n)
        self.error = np.fromiter(map(itemgetter("error"), fields), np.bool_, n)

    @classmethod
    def of(cls, spans: list[Span]) -> SpanTable:
        """The table of ``spans``, reused when it was just built for the same list: the trace series
        (prepare) and the handlers (channels) read one incident's spans, and building the columns
        is most of either's cost. Reused only for the very list (held, so its id cannot be reused)
        at the same length; the engine never changes a bundle's spans."""
        global _last
        last = _last
        if last is not None and last._spans is spans and last.n == len(spans):
            return last
        _last = table = cls(spans)
        return table

    @cached_property
    def operations(self) -> tuple[list[tuple[str, str]], IntArray]:
        """The distinct (service, operation) pairs in order of first appearance, and each span's
        number among them. Read on demand: only the handler analysis needs operations."""
        names: list[str] = list(map(itemgetter("operation"), self._fields))
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

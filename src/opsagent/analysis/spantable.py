"""Spans as columns, for array arithmetic instead of a Python loop over every span.

A window holds up to ~100k spans: at that size a Python loop per span, per pass, cost more than
everything else the engine does with them. Each column is read in one C-level pass
(``map``/``attrgetter``).
"""

from __future__ import annotations

from functools import cached_property
from itertools import repeat
from operator import attrgetter

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
        ids: list[str] = list(map(attrgetter("span_id"), spans))
        # a later duplicate overwrites an earlier one: ids index their last occurrence
        index: dict[str | None, int] = dict(zip(ids, range(n), strict=True))
        self.canon: IntArray = np.fromiter(map(index.__getitem__, ids), np.int64, n)
        parents: list[str | None] = list(map(attrgetter("parent_id"), spans))
        if "" in index:  # an empty parent id is no parent, even when a span has the empty id
            self.parent: IntArray = np.fromiter((index.get(p, -1) if p else -1 for p in parents), np.int64, n)
        else:  # None is no span id either
            self.parent = np.fromiter(map(index.get, parents, repeat(-1)), np.int64, n)
        services: list[str] = list(map(attrgetter("service"), spans))
        # services numbered in order of first appearance
        self.services = list(dict.fromkeys(services))
        code = {name: i for i, name in enumerate(self.services)}
        self.service: IntArray = np.fromiter(map(code.__getitem__, services), np.int64, n)
        self.duration = np.fromiter(map(attrgetter("duration_ms"), spans), np.float64, n)
        self.start = np.fromiter(map(attrgetter("start"), spans), np.float64, n)
        self.error = np.fromiter(map(attrgetter("error"), spans), np.bool_, n)

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
        pairs = list(
            zip(
                map(self.services.__getitem__, self.service.tolist()),
                map(attrgetter("operation"), self._spans),
                strict=True,
            )
        )
        keys = list(dict.fromkeys(pairs))
        code = {k: i for i, k in enumerate(keys)}
        return keys, np.fromiter(map(code.__getitem__, pairs), np.int64, self.n)


_last: SpanTable | None = None

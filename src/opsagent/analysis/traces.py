"""Spans condensed into per-service series: self time and error share per time bucket, and call edges.

A span's self time is its duration minus its children's. A span whose children all run in one other
service is the caller's client side of a call: its self time is the wire and queueing time of
reaching that callee, so it is attributed to the callee (a slow network or a saturated server shows
up as "time to reach X" in every caller). The per-bucket mean self time and error share then go
through the same robust scoring as metric series, so traces need no scorer of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsagent.analysis.spantable import SpanTable
from opsagent.domain import Span

FloatArray = npt.NDArray[np.float64]

# A bucket with fewer spans of a service than this says nothing about its latency (one slow span
# is noise); the bucket is left out of that service's self-time series.
MIN_SPANS_PER_BUCKET = 3
# Fewer usable buckets than this cannot give both a normal period and an incident.
MIN_BUCKETS = 4


@dataclass(frozen=True)
class TraceSeries:
    service: str
    signal: str  # "trace_self_time_ms" | "trace_error_share"
    timestamps: FloatArray
    values: FloatArray


def trace_series(
    spans: list[Span], start: float, step: float
) -> tuple[list[TraceSeries], set[tuple[str, str]]]:
    """Per-service self-time and error-share series on a grid of ``step`` seconds from ``start``."""
    if not spans:
        return [], set()
    table = SpanTable.of(spans)
    own, service, own_error = _self_times(table)
    # the bucket of each span's start; spans before the grid are left out
    bucket = np.floor_divide(table.start - start, step)
    kept = bucket >= 0
    bucket_of = bucket[kept].astype(np.int64)
    service_of, own_of, error_of = service[kept], own[kept], own_error[kept]
    n_buckets = int(bucket_of.max()) + 1 if bucket_of.size else 0
    if not n_buckets:
        return [], _call_edges(table)
    grid = start + step * np.arange(n_buckets, dtype=np.float64)
    # one bincount over (service, bucket) cells for all services: each cell still adds its spans
    # in span order, as a bincount per service did
    cells = len(table.services) * n_buckets
    cell = service_of * n_buckets + bucket_of
    counts = np.bincount(cell, minlength=cells).astype(np.float64).reshape(-1, n_buckets)
    totals = np.bincount(cell, weights=own_of, minlength=cells).reshape(-1, n_buckets)
    errors = np.bincount(cell, weights=error_of, minlength=cells).reshape(-1, n_buckets)
    out: list[TraceSeries] = []
    for code in _first_seen(service_of):
        count, total, errs = counts[code], totals[code], errors[code]
        enough = count >= MIN_SPANS_PER_BUCKET
        if enough.sum() >= MIN_BUCKETS:
            name = table.services[code]
            out.append(TraceSeries(name, "trace_self_time_ms", grid[enough], total[enough] / count[enough]))
            if errs.any():
                out.append(TraceSeries(name, "trace_error_share", grid[enough], errs[enough] / count[enough]))
    return out, _call_edges(table)


def _self_times(
    t: SpanTable,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each span's self time, the service it is attributed to, and whether its error originated in it."""
    child = t.parent >= 0
    parents = t.parent[child]
    # bincount adds in span order, as a running sum per parent would
    child_sum = np.bincount(parents, weights=t.duration[child], minlength=t.n)
    child_count = np.bincount(parents, minlength=t.n)
    # the service of a parent's last child (the one a loop assigning per child would keep)
    last_child = np.full(t.n, -1, dtype=np.int64)
    np.maximum.at(last_child, parents, np.flatnonzero(child))
    child_error = np.zeros(t.n, dtype=np.bool_)
    child_error[t.parent[child & t.error]] = True
    own = np.maximum(t.duration - child_sum[t.canon], 0.0)
    callee = np.where(last_child[t.canon] >= 0, t.service[last_child[t.canon]], -1)
    parent_service = np.where(child, t.service[t.parent], -1)
    # the caller's client span of one call: its self time is the way to and from the callee
    client = (
        (callee >= 0) & (callee != t.service) & (child_count[t.canon] == 1) & (parent_service == t.service)
    )
    service = np.where(client, callee, t.service)
    # An error counts where it originated: a span whose child also failed is passing it on.
    own_error = (t.error & ~child_error[t.canon]).astype(np.float64)
    return own, service, own_error


def _first_seen(codes: npt.NDArray[np.int64]) -> list[int]:
    """The distinct codes in order of first appearance (the order services are met in the spans)."""
    distinct, first = np.unique(codes, return_index=True)
    return [int(c) for c in distinct[np.argsort(first)]]


def _call_edges(t: SpanTable) -> set[tuple[str, str]]:
    """(caller, callee) service pairs of spans whose parent span is in another service."""
    child = t.parent >= 0
    caller = t.service[t.parent[child]]
    callee = t.service[child]
    cross = caller != callee
    pairs = set(zip(caller[cross].tolist(), callee[cross].tolist(), strict=True))
    return {(t.services[a], t.services[b]) for a, b in pairs}

"""Spans condensed into per-service series: self time and error share per time bucket, and call edges.

A span's self time is its duration minus its children's. A span whose children all run in one other
service is the caller's client side of a call: its self time is the wire and queueing time of
reaching that callee, so it is attributed to the callee (a slow network or a saturated server shows
up as "time to reach X" in every caller). The per-bucket mean self time and error share then go
through the same robust scoring as metric series, so traces need no scorer of their own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    by_id: dict[str, Span] = {s.span_id: s for s in spans}
    child_sum: dict[str, float] = defaultdict(float)
    child_count: dict[str, int] = defaultdict(int)
    child_service: dict[str, str] = {}
    child_error: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for s in spans:
        pid = s.parent_id
        if not pid:
            continue
        parent = by_id.get(pid)
        if parent is None:
            continue
        child_sum[pid] += s.duration_ms
        child_count[pid] += 1
        child_service[pid] = s.service
        if s.error:
            child_error.add(pid)
        if parent.service != s.service:
            edges.add((parent.service, s.service))
    n_buckets = 0
    rows: list[tuple[str, int, float, float]] = []
    for s in spans:
        own = max(s.duration_ms - child_sum.get(s.span_id, 0.0), 0.0)
        service = s.service
        callee = child_service.get(s.span_id)
        parent = by_id.get(s.parent_id) if s.parent_id else None
        if (
            callee is not None
            and callee != s.service
            and child_count[s.span_id] == 1
            and parent is not None
            and parent.service == s.service
        ):
            # the caller's client span of one call: its self time is the way to and from the callee
            service = callee
        b = int((s.start - start) // step)
        if b < 0:
            continue
        n_buckets = max(n_buckets, b + 1)
        # An error counts where it originated: a span whose child also failed is passing it on.
        own_error = 1.0 if s.error and s.span_id not in child_error else 0.0
        rows.append((service, b, own, own_error))
    per_service: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for service, b, own, err in rows:
        per_service[service].append((b, own, err))
    out: list[TraceSeries] = []
    grid = start + step * np.arange(n_buckets, dtype=np.float64)
    for service, items in per_service.items():
        arr = np.asarray(items, dtype=np.float64)
        idx = arr[:, 0].astype(np.int64)
        count = np.bincount(idx, minlength=n_buckets).astype(np.float64)
        total = np.bincount(idx, weights=arr[:, 1], minlength=n_buckets)
        errs = np.bincount(idx, weights=arr[:, 2], minlength=n_buckets)
        enough = count >= MIN_SPANS_PER_BUCKET
        if enough.sum() >= MIN_BUCKETS:
            out.append(
                TraceSeries(service, "trace_self_time_ms", grid[enough], total[enough] / count[enough])
            )
            if errs.any():
                out.append(
                    TraceSeries(service, "trace_error_share", grid[enough], errs[enough] / count[enough])
                )
    return out, edges

"""Onset detection: where the whole system's anomaly curve changes, near the alert.

An alert fires some time after a fault starts (or a recording's alert time is only approximate), so
"alert time minus a fixed lead" can put fault data in the normal period or normal data in the
incident. Each series is scored point by point against a preliminary normal period; the per-point
anomaly (log-compressed, capped, so no single series dominates) is summed over series into one curve
on a common time grid, and the onset is the single change point of that curve: the split that
maximises the difference of means weighted by sqrt(n0 * n1 / n), the CUSUM statistic of a mean shift.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# One series contributes at most log1p(20): beyond 20 sd "very anomalous" is all the curve needs,
# and a single exploding series must not place the onset on its own.
POINT_CAP = math.log1p(20.0)
# Points below 3 sd contribute nothing: noise would otherwise drift the curve.
POINT_MIN_Z = 3.0
# Consecutive observations further apart than this many sampling steps are a gap in the recording
# (a scrape outage, two recordings joined, minutes left out): 1.5 tolerates jittered timestamps and
# series sampled half a step apart, while one missing sample already counts.
GAP_STEPS = 1.5


def anomaly_curve(
    grid: FloatArray, step: float, per_series: list[tuple[FloatArray, FloatArray]]
) -> FloatArray:
    """Sum over series of capped log1p(z) per grid cell (max within a cell); z already signed."""
    curve = np.zeros(grid.size, dtype=np.float64)
    start = grid[0]
    for ts, z in per_series:
        contrib = np.where(z >= POINT_MIN_Z, np.minimum(np.log1p(np.maximum(z, 0.0)), POINT_CAP), 0.0)
        if not contrib.any():
            continue
        idx = np.clip(((ts - start) / step).astype(np.int64), 0, grid.size - 1)
        cell = np.zeros(grid.size, dtype=np.float64)
        np.maximum.at(cell, idx, contrib)
        curve += cell
    return curve


def change_point(curve: FloatArray, lo: int, hi: int, min_normal: int) -> int | None:
    """Index of the best mean-shift split in [lo, hi] (the first incident cell), None if flat."""
    n = curve.size
    lo = max(lo, min_normal)
    hi = min(hi, n - 1)
    if hi < lo or not curve.any():
        return None
    csum = np.concatenate(([0.0], np.cumsum(curve)))
    best, best_stat = None, 0.0
    for k in range(lo, hi + 1):
        n0, n1 = k, n - k
        if n0 <= 0 or n1 <= 0:
            continue
        m0 = csum[k] / n0
        m1 = (csum[n] - csum[k]) / n1
        stat = (m1 - m0) * math.sqrt(n0 * n1 / n)
        if stat > best_stat:
            best, best_stat = k, stat
    return best


def after_last_gap(observed: FloatArray, step: float, before: float) -> float | None:
    """The first observation after the latest recording gap that ends at or before ``before``.

    A level that differs across a gap cannot be dated: it changed somewhere in the gap, or the two
    sides are different recordings. So the onset is never put at the first point after a gap: the
    normal period must reach at least one point into the stretch the incident is in.
    """
    ts = np.unique(observed[np.isfinite(observed)])
    if ts.size < 2:
        return None
    after = ts[1:][(np.diff(ts) > GAP_STEPS * step) & (ts[1:] <= before)]
    return float(after[-1]) if after.size else None

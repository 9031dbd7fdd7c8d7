"""Robust anomaly scoring of one series: the incident window against the normal period.

A series is scored by how far its anomalous-window values stray from the normal period's median,
in units of a robust scale (IQR) that is floored so constant or near-constant series cannot
produce huge scores from tiny wobbles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsagent.domain import SignalKind

FloatArray = npt.NDArray[np.float64]

# The smallest scale a series is measured in, relative to its normal level: a 5% wobble is noise.
RELATIVE_FLOOR = 0.05
# Absolute floors per kind, in the native format's units, for series whose normal level is ~0
# (an error ratio of 0 going to 0.001 is one failed request, not an incident).
ABSOLUTE_FLOOR: dict[SignalKind, float] = {
    SignalKind.ERRORS: 0.005,
    SignalKind.LATENCY: 0.005,
    SignalKind.CPU: 0.01,
    SignalKind.RESTARTS: 0.5,
}
DEFAULT_ABSOLUTE_FLOOR = 1e-6

# Kinds where only a rise is bad; for the rest a move either way counts.
_RISE_ONLY = {
    SignalKind.LATENCY,
    SignalKind.CPU,
    SignalKind.MEMORY,
    SignalKind.RESTARTS,
    SignalKind.SATURATION,
}
# Kinds where a fall is what hurts (success rate, availability).
_FALL_WORDS = ("success", "availability")
# A point this many scales away is "moved" (for the onset of a series).
ONSET_Z = 3.0


@dataclass(frozen=True)
class SeriesScore:
    score: float
    z_max: float
    baseline: float
    peak: float
    onset: float | None


def direction(kind: SignalKind, signal: str) -> int:
    """+1 when only rises matter, -1 when only falls matter, 0 for both."""
    lowered = signal.lower()
    if any(word in lowered for word in _FALL_WORDS):
        return -1
    if kind in _RISE_ONLY or kind is SignalKind.ERRORS:
        return 1
    return 0


def robust_scale(normal: FloatArray, kind: SignalKind) -> tuple[float, float]:
    """(median, scale) of the normal period, the scale floored as documented above."""
    median = float(np.median(normal))
    q75, q25 = np.percentile(normal, [75, 25])
    floor = max(RELATIVE_FLOOR * abs(median), ABSOLUTE_FLOOR.get(kind, DEFAULT_ABSOLUTE_FLOOR))
    return median, max(float(q75 - q25), floor)


def score_series(
    timestamps: FloatArray,
    values: FloatArray,
    split: float,
    kind: SignalKind,
    signal: str,
    normal_end: float | None = None,
) -> SeriesScore | None:
    """Score the values at or after ``split`` against those before ``normal_end`` (default: split)."""
    finite = np.isfinite(values)
    ts, vs = timestamps[finite], values[finite]
    normal_mask = ts < (normal_end if normal_end is not None else split)
    anomalous_mask = ts >= split
    if normal_mask.sum() < 3 or anomalous_mask.sum() < 1:
        return None
    median, scale = robust_scale(vs[normal_mask], kind)
    z = (vs[anomalous_mask] - median) / scale
    sign = direction(kind, signal)
    if sign > 0:
        signed = z
    elif sign < 0:
        signed = -z
    else:
        signed = np.abs(z)
    best = int(np.argmax(signed))
    z_max = float(signed[best])
    moved = np.nonzero(signed >= ONSET_Z)[0]
    onset = float(ts[anomalous_mask][moved[0]]) if moved.size else None
    return SeriesScore(
        # log compression: a 1000-sigma move is stronger evidence than a 10-sigma one, not 100x stronger
        score=math.log1p(max(z_max, 0.0)),
        z_max=z_max,
        baseline=median,
        peak=float(vs[anomalous_mask][best]),
        onset=onset,
    )

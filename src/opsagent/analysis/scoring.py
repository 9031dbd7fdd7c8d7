"""Robust anomaly scoring of one series: the incident window against the normal period.

A series is scored by how far its incident-window values stray from the normal period's median, in
units of a robust scale (IQR / 1.349, which is one standard deviation for Gaussian noise). The scale
is floored twice, so constant or near-constant series cannot produce huge scores from tiny wobbles:
relative to the series' own level, and by an absolute amount that depends on its unit (a 0.1
percentage-point move of a utilisation is noise whatever its IQR was). That unit floor is the
"signal-kind normalisation": bytes, percent, seconds and cores are each floored in their own terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsagent.domain import SignalKind

FloatArray = npt.NDArray[np.float64]

# IQR of a Gaussian is 1.349 sd: dividing by it makes z read as "standard deviations".
IQR_TO_SD = 1.349
# The smallest scale a series is measured in, relative to its normal level: a 5% wobble of a level
# is within what load alone moves any service by.
RELATIVE_FLOOR = 0.05
# Absolute floors by unit, for series whose normal level is ~0 or perfectly flat. Each is about
# the smallest move an operator would call a change in that unit.
UNIT_FLOOR: dict[str, float] = {
    "percent": 1.0,  # one percentage point (utilisation, success rate, availability)
    "ratio": 0.01,  # one point of a 0-1 utilisation
    # Error shares (error ratios, and success rates / availability turned into their complement):
    # half a percent of requests failing is the smallest change worth a look.
    "error_ratio": 0.005,
    "error_percent": 0.5,
    "seconds": 0.002,  # 2 ms: below that, latency percentiles move with scrape jitter alone
    "milliseconds": 2.0,
    "bytes": 1024.0 * 1024.0,  # 1 MiB (memory compared in MB, not bytes: zero-IQR bytes dominate)
    "mebibytes": 1.0,
    "cores": 0.01,  # 10 millicores
    "millicores": 10.0,
    "count": 1.0,  # one event / request
    # A restart never happens as noise in a healthy container: one restart is 5 sd, the level at
    # which fault typing counts a signal as moved.
    "restarts": 0.2,
    # Target health turned into a down share (1 - up), a 0-1 share like a ratio: a target that is
    # down is never noise (a single missed scrape is one point, which the second-highest peak
    # ignores), so one point of the share is the floor, as for ratios.
    "down": 0.01,
}
# Latency percentiles at or above this are no measurement but a histogram's overflow bucket or a
# "no data" sentinel (some exporters report 3600 s): no request waits ten minutes for an answer
# it still counts as a latency. Such points are treated as missing.
LATENCY_CEILING_SECONDS = 600.0
# z of the 95th percentile of a Gaussian; the tail scale needs enough points for a 95th percentile
# to be more than the maximum.
TAIL_TO_SD = 1.645
TAIL_MIN_POINTS = 10
# Without unit normalisation the scale is only kept off zero.
EPSILON_SCALE = 1e-9
# Kinds where only a rise is bad; for the rest a move either way counts.
_RISE_ONLY = {
    SignalKind.LATENCY,
    SignalKind.CPU,
    SignalKind.MEMORY,
    SignalKind.RESTARTS,
    SignalKind.SATURATION,
    SignalKind.ERRORS,
    SignalKind.DISK,
}
# Signals where a fall is what hurts (success rate, availability), whatever their kind.
_FALL_WORDS = ("success", "availability", "avail")
# A point this many robust sd away is "moved" (for the onset of a series): 3 sd is the usual
# control-chart limit, rare under noise but reached by any real shift.
ONSET_Z = 3.0
# With more incident points than this, the peak is the second-highest point, so one scrape glitch
# cannot make a series; with fewer, every point is needed.
SECOND_PEAK_MIN_POINTS = 4
# Failed requests are counts: one failure more or less is noise whatever the baseline share, so the
# Poisson scale of a failure count is floored at one request.
COUNT_NOISE = 1.0
# Fewest normal points a baseline is computed from: two points give a level; the scale then rests
# on the floors. A recording too short for onset detection (e.g. five 5-minute buckets whose alert
# falls in the second) may pass 1: a coarse comparison with the one point before is better than none.
MIN_NORMAL = 2


def unit_family(signal: str, unit: str, kind: SignalKind) -> str:
    """The unit a series is measured in, from its declared unit or its name."""
    u = unit.lower()
    s = signal.lower()
    if kind is SignalKind.UP:
        return "down"
    if kind is SignalKind.ERRORS:
        percent = u in ("%", "percent") or "percent" in s or "(%)" in s or "availability" in s
        return "error_percent" if percent else "error_ratio"
    if u in ("%", "percent") or "percent" in s or "(%)" in s or s.endswith("_pct") or "availability" in s:
        return "percent"
    if u == "ratio" or s.endswith("_ratio") or "ratio" in s:
        return "ratio"
    # before bytes: "mebibytes" contains "bytes", and a 1 MiB floor read as 1 MiB of *mebibytes*
    # would flatten every memory series in MiB to 0 sd
    if "(mi)" in s or "mebibytes" in s or u in ("mi", "mib"):
        return "mebibytes"
    if u in ("bytes", "b") or "bytes" in s or s.endswith("_mem"):
        return "bytes"
    if u in ("ms", "milliseconds") or s.endswith("_ms") or "(ms)" in s:
        return "milliseconds"
    if u in ("s", "seconds") or "seconds" in s or "(s)" in s or kind is SignalKind.LATENCY:
        return "seconds"
    if "(m)" in s or "millicore" in s:
        return "millicores"
    if "cores" in s:
        return "cores"
    if kind is SignalKind.RESTARTS:
        return "restarts"
    if kind is SignalKind.TRAFFIC or "syscall" in s or s.endswith(("_total", "_count", "_ops")):
        return "count"
    return ""


def direction(kind: SignalKind, signal: str) -> int:
    """+1 when only rises matter, -1 when only falls matter, 0 for both."""
    lowered = signal.lower()
    if kind is SignalKind.UP or any(word in lowered for word in _FALL_WORDS):
        return -1
    if kind in _RISE_ONLY:
        return 1
    return 0


@dataclass(frozen=True)
class Baseline:
    median: float
    scale: float


def percentiles(values: FloatArray, percents: tuple[float, ...]) -> list[float]:
    """``np.percentile(values, percents)`` (its default linear method), bit for bit, but cheaper.

    The engine takes quantiles of a few dozen points some ten thousand times per case, where
    np.percentile's fixed cost (argument checks, index bookkeeping in arrays) is most of its time.
    This does numpy's own steps (``_quantile``, ``_lerp``) on Python floats: the same partition of
    a copy (so of equal values such as 0.0 and -0.0 the same one lands at an index) and the same
    interpolation, so every result is the same float. Non-finite values (never in a scored
    series) go to numpy itself.
    """
    n = values.size
    if n == 0:
        return [float(q) for q in np.percentile(values, list(percents))]
    top = n - 1
    # (lower index, upper index, weight) per percentile; numpy reads index -1 (the maximum) for
    # both neighbours at or beyond the last point, and then measures the weight from -1 too
    spots: list[tuple[int, int, float]] = []
    for percent in percents:
        virtual = top * (percent / 100)
        if virtual >= top:
            spots.append((-1, -1, virtual + 1))
        else:
            lo = math.floor(virtual)
            spots.append((lo, lo + 1, virtual - lo))
    part = values.copy()
    part.partition(sorted({0, -1, *(i for lo, hi, _ in spots for i in (lo, hi))}))
    if not (math.isfinite(part[0]) and math.isfinite(part[-1])):
        return [float(q) for q in np.percentile(values, list(percents))]
    out: list[float] = []
    for lo, hi, gamma in spots:
        a, b = float(part[lo]), float(part[hi])
        diff = b - a
        # numpy interpolates from the nearer neighbour: from below under 0.5, from above from it
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


def median_of(values: FloatArray) -> float:
    """``float(np.median(values))`` bit for bit, without its fixed cost (numpy's steps again)."""
    n = values.size
    if n == 0:
        return float(np.median(values))
    mid = n // 2
    part = values.copy()
    part.partition([mid - 1, mid, -1] if n % 2 == 0 else [mid, -1])
    if not math.isfinite(part[-1]):
        return float(np.median(values))
    # numpy takes the mean of the middle one or two, a sum that starts from 0.0 (so a -0.0 median
    # comes out as 0.0)
    if n % 2:
        return 0.0 + float(part[mid])
    return (0.0 + float(part[mid - 1]) + float(part[mid])) / 2


def robust_baseline(normal: FloatArray, family: str, normalise: bool = True) -> Baseline:
    """(median, scale) of the normal period, the scale floored as documented above."""
    q25, median, q75, q95 = percentiles(normal, (25, 50, 75, 95))
    iqr_sd = (q75 - q25) / IQR_TO_SD
    if not normalise:
        return Baseline(median, max(q75 - q25, EPSILON_SCALE))
    floor = max(RELATIVE_FLOOR * abs(median), UNIT_FLOOR.get(family, EPSILON_SCALE))
    # Upper-tail scale: for Gaussian noise (q95 - median) / 1.645 is one sd again, so it changes
    # nothing; for a spiky series that is flat most of the time (low-traffic latency percentiles
    # jumping to a timeout now and then) it is the spikes' height, so a spike like the normal
    # period's own is not scored as thousands of sd.
    tail = (q95 - median) / TAIL_TO_SD if normal.size >= TAIL_MIN_POINTS else 0.0
    return Baseline(median, max(iqr_sd, floor, tail))


@dataclass(frozen=True)
class SeriesScore:
    score: float
    z_max: float
    baseline: float
    peak: float
    onset: float | None
    peak_time: float
    # the strength (as ``z_max``) over the points from ``current_from`` on: how far the series is
    # still out when the alert fires; None when not asked for or no point is that late
    z_current: float | None = None
    # a CPU share of its limit at the limit when the alert fires: when it got there
    # (``saturation.py``); None otherwise
    saturated_at: float | None = None


def _effective_peak(ascending: FloatArray) -> float:
    """The strength of sorted z values: the second-highest, or the highest when there are few."""
    return float(ascending[-2]) if ascending.size >= SECOND_PEAK_MIN_POINTS else float(ascending[-1])


def signed_z(values: FloatArray, base: Baseline, sign: int) -> FloatArray:
    z = (values - base.median) / base.scale
    if sign > 0:
        return z
    if sign < 0:
        return -z
    return np.abs(z)


def error_count_z(
    share: FloatArray, requests: FloatArray, normal_mask: FloatArray | npt.NDArray[np.bool_], p0: float
) -> FloatArray:
    """z of the failed-request count per point against a baseline error share ``p0`` (0..1).

    ``share`` is the error share (0..1) and ``requests`` the request count of each point. The excess
    of failed requests over what the baseline share predicts at that point's traffic, n(p - p0), is
    measured in Poisson units, sqrt(n p0), floored at COUNT_NOISE failed requests and at the normal
    period's own spread of that excess (overdispersion: retries, bursts). So 3 failures out of 3
    requests is about 3 sd however high the share, while 20 extra failures out of 1000 is many.
    """
    expected = np.maximum(requests * p0, 0.0)
    excess = requests * (share - p0)
    normal_excess = excess[normal_mask]
    spread = 0.0
    if normal_excess.size >= MIN_NORMAL:
        q25, q75 = percentiles(normal_excess, (25, 75))
        spread = (q75 - q25) / IQR_TO_SD
    scale = np.maximum(np.sqrt(expected), max(COUNT_NOISE, spread))
    out: FloatArray = excess / scale
    return out


def score_arrays(
    ts: FloatArray,
    vs: FloatArray,
    normal_end: float,
    incident_start: float,
    kind: SignalKind,
    signal: str,
    family: str,
    normalise: bool = True,
    sign: int | None = None,
    recent_points: int = 0,
    requests: FloatArray | None = None,
    min_normal: int = MIN_NORMAL,
    current_from: float | None = None,
) -> SeriesScore | None:
    """Score the points at or after ``incident_start`` against those before ``normal_end``.

    ``ts``/``vs`` must be finite. None when either period has too few points to say anything.
    ``sign`` overrides the direction read from kind and name. With ``recent_points``, a point must
    also stray from the median of the last that many normal points (in the same scale), so a level
    that drifted before the incident is not mistaken for it. With ``requests`` (the request count
    at each point) an error share (family ``error_percent``/``error_ratio``) is scored as a count of
    failed requests (``error_count_z``): the evidence grows with the traffic it affects.
    ``min_normal`` lowers the normal points required, for recordings too short to have more.
    ``current_from`` also measures the strength over the points from then on (``z_current``).
    """
    normal_mask = ts < normal_end
    inc_mask = ts >= incident_start
    if normal_mask.sum() < max(min_normal, 1) or not inc_mask.any():
        return None
    normal = vs[normal_mask]
    base = robust_baseline(normal, family, normalise)
    inc_ts, inc_vs = ts[inc_mask], vs[inc_mask]
    sign = direction(kind, signal) if sign is None else sign
    counted = requests is not None and family in ("error_percent", "error_ratio") and sign > 0
    if counted:
        assert requests is not None
        unit = 100.0 if family == "error_percent" else 1.0
        share = vs / unit
        z_all = error_count_z(share, requests, normal_mask, base.median / unit)
    else:
        z_all = signed_z(vs, base, sign)
    z = z_all[inc_mask]
    if recent_points and normal.size > recent_points:
        # Only the strength: the onset stays measured against the whole normal period, since a
        # ramp that began just before the onset is in the recent points and would hide its start.
        recent_median = median_of(normal[-recent_points:])
        if counted:
            assert requests is not None
            recent_z = error_count_z(share, requests, normal_mask, recent_median / unit)[inc_mask]
        else:
            recent_z = signed_z(inc_vs, Baseline(recent_median, base.scale), sign)
        z = np.minimum(z, recent_z)
    order = np.argsort(z)
    best = int(order[-1])
    z_eff = _effective_peak(z[order])
    z_current: float | None = None
    if current_from is not None:
        late = np.sort(z[inc_ts >= current_from])
        z_current = _effective_peak(late) if late.size else None
    moved = np.nonzero(z >= ONSET_Z)[0]
    onset: float | None = None
    if moved.size:
        # A series can move before the system-wide onset (a leak ramps before anything fails):
        # its own onset is the start of the run of moved points that reaches into the incident.
        i = int(np.nonzero(inc_mask)[0][moved[0]])
        while i > 0 and z_all[i - 1] >= ONSET_Z:
            i -= 1
        onset = float(ts[i])
    return SeriesScore(
        z_current=z_current,
        # log compression: a 1000-sigma move is stronger evidence than a 10-sigma one, not 100x stronger
        score=math.log1p(max(z_eff, 0.0)),
        z_max=z_eff,
        baseline=base.median,
        peak=float(inc_vs[best]),
        onset=onset,
        peak_time=float(inc_ts[best]),
    )

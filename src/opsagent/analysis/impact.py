"""Impact accounting: could a suspect's own trouble account for the alerted symptom?

A fault reaches the alerted service through calls, so the extra time its callers wait and the extra
failures they see are bounded by the suspect's own excess: its extra latency per request (or extra
error share) times the requests it served. A service whose latency tripled on 20 requests while the
alerted service waited seconds more on 700 cannot be why; one whose excess matches cannot be ruled
out. This is a comparison of amounts (request-seconds, failed requests), so it needs the per-service
request counts and mean latencies (or error shares) of the recording; where they are missing it
says nothing (weight 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# A cause should account for at least half of the symptom's excess: the rest may be the alerted
# service's own share of the slowdown, retries, or other callees that suffer with it. Below that,
# the weight falls linearly...
COVER_FULL = 0.5
# ...down to this floor, reached by a suspect with no measurable excess at all: it is ranked down,
# not removed, since counts and means are coarse (5-minute aggregates, a few requests).
COVER_FLOOR = 0.3


@dataclass(frozen=True)
class Traffic:
    """One service's per-point request counts and, aligned with them, what each request suffered."""

    ts: FloatArray
    requests: FloatArray
    latency: FloatArray | None = None  # mean latency per request (s); NaN where unknown
    errors: FloatArray | None = None  # error share 0..1; NaN where unknown


@dataclass(frozen=True)
class Excess:
    seconds: float  # extra request-seconds waited over the incident
    failures: float  # extra failed requests over the incident


def _excess(
    ts: FloatArray, n: FloatArray, x: FloatArray, normal_end: float, incident_start: float, recent: int
) -> float | None:
    ok = np.isfinite(x) & np.isfinite(n)
    normal = x[ok & (ts < normal_end)]
    inc = ok & (ts >= incident_start)
    if normal.size == 0 or not inc.any():
        return None
    base = float(np.median(normal))
    if recent and normal.size > recent:
        # the larger of the two levels: a level that drifted up before the incident is not its excess
        base = max(base, float(np.median(normal[-recent:])))
    return float(np.sum(n[inc] * np.maximum(x[inc] - base, 0.0)))


def excess(t: Traffic, normal_end: float, incident_start: float, recent_points: int = 0) -> Excess | None:
    """The service's excess over the incident window; None when neither measure can be computed."""
    seconds = failures = None
    if t.latency is not None:
        seconds = _excess(t.ts, t.requests, t.latency, normal_end, incident_start, recent_points)
    if t.errors is not None:
        failures = _excess(t.ts, t.requests, t.errors, normal_end, incident_start, recent_points)
    if seconds is None and failures is None:
        return None
    return Excess(seconds=seconds or 0.0, failures=failures or 0.0)


def coverage_weight(suspect: Excess, symptom: Excess, measure: str | None) -> float:
    """Weight in [COVER_FLOOR, 1] for a suspect, from the share of the symptom's excess it covers.

    ``measure`` is "latency" or "errors" (what the alert is about), or None for the better of both.
    A symptom with no excess in a measure gives no information in it (weight 1).
    """
    shares: list[float] = []
    if measure in (None, "latency") and symptom.seconds > 0:
        shares.append(suspect.seconds / symptom.seconds)
    if measure in (None, "errors") and symptom.failures > 0:
        shares.append(suspect.failures / symptom.failures)
    if not shares:
        return 1.0
    share = min(max(shares) / COVER_FULL, 1.0)
    return COVER_FLOOR + (1.0 - COVER_FLOOR) * share

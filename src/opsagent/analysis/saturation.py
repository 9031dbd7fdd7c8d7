"""CPU saturation: a container's CPU at its limit, read from the level, not from a score.

A CPU fault starves its container: usage climbs to the CPU limit and stays there (the kernel
throttles it beyond), and latency follows. How far that is from the normal period in robust sd
depends on how busy the normal period was: a service whose normal CPU swings between a third and
four fifths of its limit, or whose normal period holds an earlier CPU fault, reaches its limit
only a few sd out, and the fault is then typed by what followed it (latency, or the stressor's
memory). The level says it directly: a utilisation of the limit (``cpu_utilisation_percent``, a
share of the limit in percent or as a ratio) at the limit when the alert fires, where the normal
period was below it. Usage in cores, or in percent of one core, has no limit to be near and is not
read here; nor are the host's series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from opsagent.analysis.prepare import HOST_PREFIXES
from opsagent.domain import SignalKind

FloatArray = npt.NDArray[np.float64]

# "At the limit": 90% of it. A container hitting its limit in bursts averages a little below it
# over a scrape interval (Online Boutique's CPU hogs read 88-102%), a busy healthy one stays well
# under it (its normal periods: at most about 85%).
SATURATION_SHARE = 0.9
_FULL_SCALE = {"percent": 100.0, "ratio": 1.0}
# points needed after ``current_from`` before the level is trusted: the second-highest, as scores do
_MIN_POINTS = 2


def limit_share(kind: SignalKind, signal: str, family: str) -> bool:
    """Whether a series is a container's CPU as a share of its limit."""
    name = signal.lower()
    return (
        kind is SignalKind.CPU
        and family in _FULL_SCALE
        and ("utilisation" in name or "utilization" in name)
        and not name.startswith(HOST_PREFIXES)
    )


def saturated_at(
    ts: FloatArray, vs: FloatArray, normal_end: float, incident_start: float, current_from: float, family: str
) -> float | None:
    """When a share-of-limit CPU series reached its limit, if it is at it when the alert fires
    (the second-highest point from ``current_from`` on) and its normal period was below it."""
    limit = SATURATION_SHARE * _FULL_SCALE[family]
    normal = vs[ts < normal_end]
    if not normal.size or float(np.median(normal)) >= limit:
        return None
    late = np.sort(vs[ts >= current_from])
    if late.size < _MIN_POINTS or late[-2] < limit:
        return None
    at = np.nonzero((ts >= min(incident_start, current_from)) & (vs >= limit))[0]
    return float(ts[at[0]]) if at.size else None

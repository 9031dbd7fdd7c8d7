"""A series on the engine's common footing, and its score against the normal period.

Metric series and the per-service series condensed from spans (``traces.py``) become
``PreparedSeries``: finite arrays, the unit family their scale floors come from, the direction that
counts as worse, and the weight of their signal kind. ``ScoredSeries`` pairs one with its
``SeriesScore``; ``ServiceEvidence`` gathers what the stages found about one service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from opsagent.analysis.events import PatternShift
from opsagent.analysis.scoring import SeriesScore
from opsagent.domain import SignalKind

FloatArray = npt.NDArray[np.float64]


@dataclass
class PreparedSeries:
    id: str
    service: str
    signal: str
    kind: SignalKind
    family: str
    source: str  # "metric" | "trace" | "client" (a caller's latency of its outbound calls)
    ts: FloatArray
    vs: FloatArray
    sign: int = 1
    weight: float = 1.0
    # request count at each point of ``ts`` (error shares scored as failed-request counts)
    requests: FloatArray | None = None
    # A success rate, availability or target health is scored as its complement (the failing or down
    # share): ``vs`` holds ``complement_of - value``. Kept so that evidence can be told in the
    # signal's own terms ("target_up fell from 1 to 0", not "rose from 0 to 1").
    complement_of: float | None = None


@dataclass
class ScoredSeries:
    series: PreparedSeries
    result: SeriesScore

    @property
    def weighted(self) -> float:
        return self.result.score * self.series.weight


@dataclass
class ServiceEvidence:
    """Everything the stages found about one service: scored series, changed events, channel values."""

    scored: list[ScoredSeries] = field(default_factory=list)
    patterns: list[PatternShift] = field(default_factory=list)
    channels: dict[str, float] = field(default_factory=dict)

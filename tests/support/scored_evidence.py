"""Scored evidence built by hand, for the tests of the stages after scoring."""

from __future__ import annotations

import numpy as np

from opsagent.analysis.scoring import SeriesScore
from opsagent.analysis.series import PreparedSeries, ScoredSeries, ServiceEvidence
from opsagent.domain import SignalKind


def make_slow(ev: ServiceEvidence, service: str, score: float) -> None:
    """Give the service a latency rise of ``score`` in its metric channel (it leads when ``score``
    is its strongest channel)."""
    series = PreparedSeries(
        id=f"metric:{service}:latency_p90_seconds",
        service=service,
        signal="latency_p90_seconds",
        kind=SignalKind.LATENCY,
        family="seconds",
        source="metric",
        ts=np.zeros(1),
        vs=np.zeros(1),
    )
    ev.scored.append(ScoredSeries(series, SeriesScore(score, 20.0, 0.01, 0.5, None, 0.0)))
    ev.channels["metric"] = score

"""BARO, the baseline for evaluation (Pham et al., FSE 2024), as RCAEval implements it.

For every metric: split at the alert time into a normal and an anomalous part; drop the metric if
it is constant in either part (RCAEval's ``drop_constant`` on each part, then the intersection);
fit a robust scaler on the normal part (centre = median, scale = IQR, a zero IQR scales by 1 as
scikit-learn does); the metric's score is the largest scaled value in the anomalous part. Memory
is compared in MB, not bytes. A service's score is the score of its best metric (RCAEval maps
columns to services by name, ``x-db`` into ``x``; our importers already attribute ``x-db``'s
signals to ``x``). Only rises count, as in BARO: the maximum, not the absolute maximum.

Two deliberate deviations, both only where RCAEval's result would be undefined: NaN (no traffic)
is ignored in the fit and in the maximum, and a metric with no anomalous or normal values is
skipped. BARO has no notion of confidence; ours is the score's share among the top five, which is
enough to order the root causes and nothing more.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from opsagent.domain import (
    EvidenceBundle,
    EvidenceItem,
    FaultType,
    Findings,
    MetricSeries,
    ReasonerTrace,
    RootCause,
    SignalKind,
    Suspect,
)
from opsagent.reasoning.base import Reasoning

# Where the alert time is unknown, the last quarter of the window is taken as anomalous.
_DEFAULT_SPLIT = 0.75
_TOP = 5
# scikit-learn's RobustScaler treats a scale this small as zero and scales by 1 instead.
_ZERO_SCALE = 10 * np.finfo(np.float64).eps

_KIND_TO_FAULT: dict[SignalKind, FaultType] = {
    SignalKind.CPU: FaultType.CPU,
    SignalKind.MEMORY: FaultType.MEMORY,
    SignalKind.LATENCY: FaultType.LATENCY_NETWORK,
    SignalKind.NETWORK: FaultType.LATENCY_NETWORK,
    SignalKind.ERRORS: FaultType.ERRORS_CODE,
    SignalKind.UP: FaultType.UNAVAILABLE,
    SignalKind.RESTARTS: FaultType.UNAVAILABLE,
}


def _constant(values: npt.NDArray[np.float64]) -> bool:
    """pandas' ``(col != col.iloc[0]).any()`` negated: NaN differs from everything, itself too."""
    return bool(values.size == 0 or not np.any(values != values[0]))


def _in_mb(series: MetricSeries, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if series.kind is SignalKind.MEMORY and (series.unit == "bytes" or series.signal.endswith("_bytes")):
        return values / 1e6
    return values


def metric_score(normal: npt.NDArray[np.float64], anomalous: npt.NDArray[np.float64]) -> float | None:
    """max((anomalous - median(normal)) / IQR(normal)); None where BARO would drop the metric."""
    if _constant(normal) or _constant(anomalous):
        return None
    fit = normal[~np.isnan(normal)]
    test = anomalous[~np.isnan(anomalous)]
    if fit.size == 0 or test.size == 0:
        return None
    median = float(np.median(fit))
    q75, q25 = np.percentile(fit, [75, 25])
    scale = float(q75 - q25)
    if scale < _ZERO_SCALE:
        scale = 1.0
    return float(np.max((test - median) / scale))


def baro_scores(bundle: EvidenceBundle) -> list[tuple[MetricSeries, float]]:
    """Every surviving metric with its BARO score, highest first."""
    incident = bundle.incident
    if incident.alert_time is not None:
        split = incident.alert_time.timestamp()
    else:
        start, end = incident.window.start_s, incident.window.end_s
        split = start + (end - start) * _DEFAULT_SPLIT
    scored: list[tuple[MetricSeries, float]] = []
    for series in bundle.metrics:
        if series.is_call_edge:
            continue  # a call edge's series: BARO ranks services by their own metrics, as published
        stamps = np.asarray(series.timestamps, dtype=np.float64)
        values = _in_mb(series, np.asarray(series.values, dtype=np.float64))
        score = metric_score(values[stamps < split], values[stamps >= split])
        if score is not None and not np.isnan(score):
            scored.append((series, score))
    scored.sort(key=lambda pair: -pair[1])
    return scored


class BaroReasoner:
    """Ranks services by their most anomalous metric; ignores logs, traces, topology and the engine."""

    name = "baro"

    def reason(self, bundle: EvidenceBundle, suspects: list[Suspect]) -> Reasoning:
        started = time.perf_counter()
        best: dict[str, tuple[MetricSeries, float]] = {}
        for series, score in baro_scores(bundle):
            if series.service not in best:
                best[series.service] = (series, score)
        ranking = list(best)
        top = [best[s] for s in ranking[:_TOP]]
        positive = sum(max(score, 0.0) for _, score in top) or 1.0
        root_causes = [
            RootCause(
                service=series.service,
                fault_type=_KIND_TO_FAULT.get(series.kind, FaultType.UNKNOWN),
                confidence=round(min(1.0, max(score, 0.0) / positive), 3),
                summary=f"{series.signal} reached {score:.1f} robust scales above its normal median",
                evidence=[
                    EvidenceItem(
                        id=series.id,
                        kind="metric",
                        service=series.service,
                        signal=series.signal,
                        score=round(score, 3),
                        summary=f"BARO score {score:.2f} on {series.signal}",
                    )
                ],
            )
            for series, score in top
        ]
        summary = (
            f"BARO: most anomalous service {ranking[0]} ({top[0][0].signal})."
            if ranking
            else "BARO: no metric varies in both the normal and the anomalous period."
        )
        findings = Findings(reasoner=self.name, root_causes=root_causes, ranking=ranking, summary=summary)
        trace = ReasonerTrace(reasoner=self.name, seconds=round(time.perf_counter() - started, 4))
        return Reasoning(findings=findings, trace=trace)

"""Per-service traffic read from a bundle's metrics: request counts, mean latency, error share.

The engine uses them twice: an error share is scored as a count of failed requests where the
request counts are recorded (``scoring.error_count_z``), and each suspect is weighed by how much of
the alerted symptom its own excess could account for (``impact.py``). A zero request count marks
a point whose error share is undefined (``idle_times``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from opsagent.analysis.impact import Excess, Traffic, coverage_weight, excess
from opsagent.analysis.scoring import direction, unit_family
from opsagent.domain import EvidenceBundle, MetricSeries, SignalKind
from opsagent.domain.signals import classify_signal, is_client_side

FloatArray = npt.NDArray[np.float64]


def is_request_count(m: MetricSeries) -> bool:
    return m.kind is SignalKind.TRAFFIC and "request" in m.signal.lower()


def summed_by_time(series: Iterable[MetricSeries]) -> dict[float, float]:
    """The series' values added up per timestamp (a missing value adds nothing)."""
    out: dict[float, float] = {}
    for m in series:
        for t, v in zip(m.timestamps, m.values, strict=False):
            if math.isfinite(v):
                out[t] = out.get(t, 0.0) + v
    return out


def request_counts(bundle: EvidenceBundle) -> dict[str, dict[float, float]]:
    """Per service, its request count by timestamp (the sum when it has several request series)."""
    per_service: dict[str, list[MetricSeries]] = defaultdict(list)
    for m in bundle.metrics:
        if is_request_count(m):
            per_service[m.service].append(m)
    return defaultdict(dict, {service: summed_by_time(series) for service, series in per_service.items()})


def aligned_requests(counts: dict[float, float] | None, ts: FloatArray) -> FloatArray | None:
    """The request count at each of ``ts``; None unless every point has one."""
    if not counts:
        return None
    got = [counts.get(float(t)) for t in ts]
    if any(v is None for v in got):
        return None
    return np.asarray(got, dtype=np.float64)


_MEAN_WORDS = ("average", "mean", "avg")


def traffic_by_service(bundle: EvidenceBundle) -> dict[str, Traffic]:
    """Per service with request counts: its mean latency and error share aligned with them."""
    counts = request_counts(bundle)
    latency: dict[str, dict[float, float]] = defaultdict(dict)
    errors: dict[str, dict[float, float]] = defaultdict(dict)
    for m in bundle.metrics:
        if m.service not in counts:
            continue
        lowered = m.signal.lower()
        if m.kind is SignalKind.LATENCY and any(w in lowered for w in _MEAN_WORDS):
            if is_client_side(m.signal) or latency[m.service]:
                continue  # the service's own mean latency, once
            scale = 0.001 if unit_family(m.signal, m.unit, m.kind) == "milliseconds" else 1.0
            latency[m.service] = {t: v * scale for t, v in zip(m.timestamps, m.values, strict=False)}
        elif m.kind is SignalKind.ERRORS and not errors[m.service]:
            unit = 100.0 if unit_family(m.signal, m.unit, m.kind) == "error_percent" else 1.0
            fall = direction(m.kind, m.signal) < 0
            errors[m.service] = {
                t: (1.0 - v / unit) if fall else v / unit
                for t, v in zip(m.timestamps, m.values, strict=False)
            }
    out: dict[str, Traffic] = {}
    for service, by_time in counts.items():
        ts = np.asarray(sorted(by_time), dtype=np.float64)

        def aligned(values: dict[float, float], ts: FloatArray = ts) -> FloatArray | None:
            return (
                np.asarray([values.get(float(t), math.nan) for t in ts], dtype=np.float64) if values else None
            )

        out[service] = Traffic(
            ts=ts,
            requests=np.asarray([by_time[float(t)] for t in ts], dtype=np.float64),
            latency=aligned(latency.get(service, {})),
            errors=aligned(errors.get(service, {})),
        )
    return out


def alert_measure(bundle: EvidenceBundle) -> tuple[str | None, str | None]:
    """The alerted service and what the alert is about ("latency", "errors" or None)."""
    for alert in bundle.incident.alerts:
        service = alert.service
        if not service:
            continue
        kind = classify_signal(" ".join([alert.name, *alert.labels.values()]))
        if kind is SignalKind.LATENCY:
            return service, "latency"
        if kind is SignalKind.ERRORS:
            return service, "errors"
        return service, None
    return None, None


def impact_weights(
    bundle: EvidenceBundle, normal_end: float, incident_start: float, services: list[str], recent_points: int
) -> dict[str, tuple[float, Excess]]:
    """Per suspect with traffic data, its coverage weight and excess (none without an alerted service)."""
    symptom_service, measure = alert_measure(bundle)
    traffic = traffic_by_service(bundle)
    if symptom_service not in traffic:
        return {}
    symptom = excess(traffic[symptom_service], normal_end, incident_start, recent_points)
    if symptom is None:
        return {}
    out: dict[str, tuple[float, Excess]] = {}
    for service in services:
        t = traffic.get(service)
        own = excess(t, normal_end, incident_start, recent_points) if t is not None else None
        if own is not None:
            out[service] = (coverage_weight(own, symptom, measure), own)
    return out


def idle_times(bundle: EvidenceBundle) -> dict[str, FloatArray]:
    """Per service, the timestamps at which a request-count series of it reads zero."""
    out: dict[str, FloatArray] = {}
    for m in bundle.metrics:
        if is_request_count(m):
            vs = np.asarray(m.values, dtype=np.float64)
            zero = np.asarray(m.timestamps, dtype=np.float64)[vs == 0.0]
            if zero.size:
                prev = out.get(m.service)
                out[m.service] = zero if prev is None else np.union1d(prev, zero)
    return out

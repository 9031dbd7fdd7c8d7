"""Stage 5, weigh: a service's channels on one footing, combined into its score.

Each service has one value per channel (``dict[channel, float]``, on the log1p(sd) scale the
scorers share). ``calibrate`` expresses every channel in the metric channel's units by how
exceptional a service is in it, ``weigh_by_concentration`` shrinks channels whose evidence is spread
over many services, and ``combine`` turns a service's channels into its score. Where request counts
are recorded, each score is then weighed by how much of the alerted symptom the service's own
excess could account for (``traffic.impact_weights``).
"""

from __future__ import annotations

import math

import numpy as np

from opsagent.analysis.impact import Excess
from opsagent.analysis.options import EngineOptions
from opsagent.analysis.score import RECENT_POINTS
from opsagent.analysis.scoring import ONSET_Z
from opsagent.analysis.series import ServiceEvidence
from opsagent.analysis.split import Split
from opsagent.analysis.traffic import impact_weights
from opsagent.domain import EvidenceBundle

Channels = dict[str, float]

# A service's score: its strongest channel plus fractions of the next ones (corroboration by an
# independent kind of evidence counts, but less than the evidence itself).
CHANNEL_WEIGHTS = (1.0, 0.3, 0.1)
# Calibration: each channel's values across the incident's services are standardised by their
# median and robust spread (MAD x 1.4826, one sd for Gaussian data), then expressed in the metric
# channel's units, so "as exceptional among the services as a k-sd outlier of the metric channel"
# reads the same in every channel. The spread is floored at ln 2 on the log1p(sd) scale every
# channel shares: two services whose evidence differs by less than a factor of two in robust sd are
# alike (sd estimates from tens of normal points are that uncertain), so a channel in which every
# service looks alike has a spread at the floor and makes nobody exceptional. A service "stands out"
# in a channel at ONSET_Z robust sd among the services, the limit used for a series' own move.
MAD_TO_SD = 1.4826
CALIBRATION_FLOOR = math.log(2.0)


def combine(channels: Channels) -> float:
    """A service's score from its channels: the strongest plus shares of the next ones."""
    ordered = sorted((v for v in channels.values() if v > 0), reverse=True)
    return sum(w * v for w, v in zip(CHANNEL_WEIGHTS, ordered, strict=False))


def _spread(values: list[float]) -> tuple[float, float]:
    """Median and robust spread (floored at CALIBRATION_FLOOR) of one channel's values."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(np.asarray(values) - median))) * MAD_TO_SD
    return median, max(mad, CALIBRATION_FLOOR)


def _outliers(
    values: list[float],
    median: float,
    scale: float,
    services: list[str] | None = None,
    callees: dict[str, set[str]] | None = None,
) -> int:
    """How many services stand out in a channel (robust z of at least ONSET_Z), at least one.

    With ``callees`` (the call graph, ``services`` in the order of ``values``), a service that
    stands out while one of the services it calls stands out too is not counted: a fault makes its
    callers wait and fail, so a callee's fault seen again at its callers is one piece of evidence,
    not several, and must not dilute the channel as several independent outliers would.
    """
    out = [i for i, v in enumerate(values) if (v - median) / scale >= ONSET_Z]
    if callees is not None and services is not None:
        standing = {services[i] for i in out}
        out = [i for i in out if not (callees.get(services[i], set()) - {services[i]}) & standing]
    return max(len(out), 1)


def calibrate(
    by_service: dict[str, Channels], reference: str = "metric", callees: dict[str, set[str]] | None = None
) -> None:
    """Put every channel on the reference channel's scale, by how exceptional a service is in it.

    A service's value in a channel becomes its robust z among all services' values in that channel
    (median, floored MAD), mapped back through the reference channel's median and spread: the
    reference channel itself is unchanged (so metric-only incidents rank exactly as before), and a
    5-sd outlier of the pattern channel counts as much as a 5-sd outlier of the metric channel,
    whatever the raw scales. The mapped spread is then scaled by how many services stand out in the
    reference channel over how many stand out in this one (``_outliers``): a channel in which one
    service stands out points at it, one in which eight do (a shared artefact, noise reaching many
    services) shares its evidence among them, so a lone pattern outlier is not outvoted by the
    loudest of several metric outliers. With ``callees`` (switch ``independent_outliers``), the
    outliers counted are the independent ones: a service that stands out with one of its callees is
    that callee's fault seen again (a CPU-starved service's callers' latency), not a second piece
    of evidence that the channel's evidence must be shared with. A service with no evidence in a
    channel keeps 0 there (absence is not "typical" evidence), and a mapped value never goes below
    0. Channels with no
    evidence at all, or with fewer than three services (no spread to measure), are left as they are.
    """
    services = list(by_service)
    if len(services) < 3:
        return
    ref_values = [by_service[s].get(reference, 0.0) for s in services]
    ref_median, ref_scale = _spread(ref_values)
    ref_outliers = _outliers(ref_values, ref_median, ref_scale, services, callees)
    names = {name for channels in by_service.values() for name in channels} - {reference}
    for name in names:
        values = [by_service[s].get(name, 0.0) for s in services]
        if not any(v > 0 for v in values):
            continue
        median, scale = _spread(values)
        share = ref_outliers / _outliers(values, median, scale, services, callees)
        for svc, v in zip(services, values, strict=True):
            if v > 0:
                by_service[svc][name] = max(ref_median + (v - median) / scale * ref_scale * share, 0.0)


def weigh_by_concentration(by_service: dict[str, Channels]) -> None:
    """Scale each channel by how much of its evidence sits on its top service, relative to the most
    concentrated channel.

    A channel that points at one service (a new error template on one service, the CPU of one pod)
    carries information about *which* service; one whose evidence is spread over many services (the
    latency of everything downstream of a slow gateway, noise on a system with many small services)
    says that something is wrong, not where. The concentration is the top service's share of the
    channel's total (1 when only one service has evidence, 1/n when n share it evenly); channels are
    scaled by it over the largest concentration, so the most concentrated channel is unchanged, the
    others only shrink, and an incident with a single channel ranks as without this step.
    """
    totals: dict[str, tuple[float, float]] = {}
    for channels in by_service.values():
        for name, value in channels.items():
            top, total = totals.get(name, (0.0, 0.0))
            totals[name] = (max(top, value), total + max(value, 0.0))
    shares = {name: top / total for name, (top, total) in totals.items() if total > 0}
    if len(shares) < 2:
        return
    most = max(shares.values())
    for channels in by_service.values():
        for name in channels:
            channels[name] *= shares.get(name, 1.0) / most


def weigh(
    bundle: EvidenceBundle,
    split: Split,
    evidence: dict[str, ServiceEvidence],
    options: EngineOptions,
    callees: dict[str, set[str]] | None = None,
) -> tuple[dict[str, float], dict[str, tuple[float, Excess]]]:
    """Each service's score, and the impact weight (with its own excess) of those it was weighed by.

    ``callees``: the call graph (``prepare.call_graph``) by which ``independent_outliers`` tells a
    fault's callers from independent outliers."""
    by_service = {svc: ev.channels for svc, ev in evidence.items()}
    if options.weigh.channel_calibration:
        calibrate(by_service, callees=callees if options.weigh.independent_outliers else None)
    if options.weigh.channel_concentration:
        weigh_by_concentration(by_service)
    scores = {service: combine(channels) for service, channels in by_service.items()}
    impact: dict[str, tuple[float, Excess]] = {}
    if options.weigh.traffic_weighting:
        recent = RECENT_POINTS if options.score.recent_baseline else 0
        impact = impact_weights(bundle, split.normal_end, split.incident_start, list(scores), recent)
        for service, (weight, _) in impact.items():
            scores[service] *= weight
    return scores, impact

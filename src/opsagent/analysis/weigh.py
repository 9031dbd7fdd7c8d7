"""Stage 5, weigh: a service's channels on one footing, combined into its score.

Each service has one value per channel (``dict[channel, float]``, on the log1p(sd) scale the
scorers share). ``weigh_by_concentration`` shrinks channels whose evidence is spread over many
services, and ``combine`` turns a service's channels into its score. (Calibrating each channel to
the metric channel's scale by how exceptional a service is in it was removed: it cost AC@3 on both
Nezha systems at every alert delay and paid one Train Ticket case at +180 s; docs/ENGINE.md.) Where request counts
are recorded, each score is then weighed by how much of the alerted symptom the service's own
excess could account for (``traffic.impact_weights``).
"""

from __future__ import annotations

from opsagent.analysis.impact import Excess
from opsagent.analysis.options import EngineOptions
from opsagent.analysis.score import RECENT_POINTS
from opsagent.analysis.series import ServiceEvidence
from opsagent.analysis.split import Split
from opsagent.analysis.traffic import impact_weights
from opsagent.domain import EvidenceBundle

Channels = dict[str, float]

# A service's score: its strongest channel plus fractions of the next ones (corroboration by an
# independent kind of evidence counts, but less than the evidence itself).
CHANNEL_WEIGHTS = (1.0, 0.3, 0.1)


def combine(channels: Channels) -> float:
    """A service's score from its channels: the strongest plus shares of the next ones."""
    ordered = sorted((v for v in channels.values() if v > 0), reverse=True)
    return sum(w * v for w, v in zip(CHANNEL_WEIGHTS, ordered, strict=False))


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
    bundle: EvidenceBundle, split: Split, evidence: dict[str, ServiceEvidence], options: EngineOptions
) -> tuple[dict[str, float], dict[str, tuple[float, Excess]]]:
    """Each service's score, and the impact weight (with its own excess) of those it was weighed by."""
    by_service = {svc: ev.channels for svc, ev in evidence.items()}
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

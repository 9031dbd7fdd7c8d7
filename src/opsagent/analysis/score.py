"""Stage 3, score: every prepared series against the normal period, per service.

Each series is scored robustly (``scoring.score_arrays``): median and floored robust scale of the
normal period, the incident's second-highest point in those units, log-compressed. Typing also
needs how far each series is still out when the alert fires (``z_current``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from opsagent.analysis.options import EngineOptions
from opsagent.analysis.prepare import Prepared
from opsagent.analysis.saturation import limit_share, saturated_at
from opsagent.analysis.scoring import MIN_NORMAL, score_arrays
from opsagent.analysis.series import ScoredSeries, ServiceEvidence
from opsagent.analysis.split import Split

# With the recent baseline on, a point must also stray from the median of the last 3 normal points:
# the fewest whose median ignores one outlier, and short enough to follow a level that drifted
# (a normal period recorded apart from the incident, or a previous fault still fading).
RECENT_POINTS = 3


def score(prepared: Prepared, split: Split, options: EngineOptions) -> dict[str, ServiceEvidence]:
    """Each service's scored series."""
    step = prepared.step
    # a normal period with room for fewer than MIN_NORMAL points: a recording that starts just
    # before its alert; one point before is then all the baseline there can be
    short = split.normal_end - split.normal_start < MIN_NORMAL * step
    # typing reads how far each series is still out from one sample before the alert on
    current_from = prepared.alert - step if options.score.current_moves and prepared.alert_known else None
    evidence: dict[str, ServiceEvidence] = defaultdict(ServiceEvidence)
    for s in prepared.series:
        result = score_arrays(
            s.ts,
            s.vs,
            split.normal_end,
            split.incident_start,
            s.kind,
            s.signal,
            s.family,
            options.prepare.kind_normalisation,
            sign=s.sign,
            recent_points=RECENT_POINTS if options.score.recent_baseline else 0,
            requests=s.requests,
            min_normal=1 if short else MIN_NORMAL,
            current_from=current_from,
        )
        if result is None:
            continue
        if options.explain.cpu_saturation and limit_share(s.kind, s.signal, s.family):
            since = prepared.alert - step if prepared.alert_known else split.incident_start
            at = saturated_at(s.ts, s.vs, split.normal_end, split.incident_start, since, s.family)
            result = replace(result, saturated_at=at)
        evidence[s.service].scored.append(ScoredSeries(s, result))
    return evidence

"""Suspect ranking: which services most likely caused the incident, with the evidence for each.

The engine is seven stages, one module each, run in order by ``rank_suspects``:

1. ``prepare``: every metric series, and per-service self-time / error-share series condensed from
   the spans, become arrays on one footing;
2. ``split``: the normal period and the incident, from a change point in the services' own signals
   inside the range the alert bounds (the alert only bounds it: it fires minutes after the fault);
3. ``score``: each series scored robustly against the normal period;
4. ``channels``: per service, one value per evidence channel (metrics, traces, changed events of
   logs, spans, call edges and handlers);
5. ``weigh``: channels on one footing (calibrated, weighed by concentration) and combined; where
   request counts exist, weighed by how much of the alerted symptom a service could account for;
6. ``propagate``: a service whose anomaly an anomalous callee explains is discounted;
7. ``explain``: the fault type from the mechanism's signals, and the citable evidence items.

``EngineOptions`` groups the switches of each stage; docs/ENGINE.md says what each measured.
"""

from __future__ import annotations

from opsagent.analysis.channels import gather
from opsagent.analysis.explain import explain
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.prepare import prepare
from opsagent.analysis.propagate import propagate
from opsagent.analysis.score import score
from opsagent.analysis.split import split_incident
from opsagent.analysis.weigh import weigh
from opsagent.domain import EvidenceBundle, Suspect


def rank_suspects(bundle: EvidenceBundle, options: EngineOptions = DEFAULT_OPTIONS) -> list[Suspect]:
    """Every service with evidence, most likely root cause first."""
    prepared = prepare(bundle, options)
    split = split_incident(prepared, bundle, options)
    evidence = score(prepared, split, options)
    gather(bundle, split, evidence, options)
    scores, impact = weigh(bundle, split, evidence, options, prepared.callees)
    placement = propagate(prepared, evidence, scores, options, impact)
    return explain(evidence, scores, placement, impact, options)

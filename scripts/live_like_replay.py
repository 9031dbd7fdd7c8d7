"""Replay recorded lab cases as their live investigations saw them, and rank them.

    .venv/bin/python scripts/live_like_replay.py .lab/cases/<run> .lab/b/cases/<run> [--json out.json]

A recorded case ends a minute after its alert (``opsagent record``); the alert's live investigation
read the data up to a few seconds after it, with the incident's window reaching its look-ahead into
the future. Each case is cut to that view (data to the alert + ``--seen`` seconds, the window to the
alert + ``--ahead`` minutes) and ranked by the engine, so a live top that its recording does not give
back can be reproduced offline.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

from opsagent.analysis.engine import rank_suspects
from opsagent.config import Settings
from opsagent.domain import EvidenceBundle, RecordedIncident, TimeWindow
from opsagent.evals.discover import discover, load_case
from opsagent.evals.harness import eval_settings
from opsagent.evals.replay import replay_sources
from opsagent.evidence.base import collect
from opsagent.evidence.coverage import after_quiet, complete


def live_view(rec: RecordedIncident, settings: Settings, seen: float, ahead: float) -> EvidenceBundle:
    """The bundle of ``rec`` as collected at its alert + ``seen`` s, its window to the alert + ``ahead`` min."""
    incident, _ = after_quiet(rec.incident, settings.normal_period)
    bundle = collect(incident, replay_sources(rec), timeout_seconds=60)
    complete(bundle, settings.topology, settings.normal_period)
    alert = bundle.incident.alert_time
    if alert is None:
        return bundle
    until = alert.timestamp() + seen
    metrics = []
    for m in bundle.metrics:
        kept = [(t, v) for t, v in zip(m.timestamps, m.values, strict=True) if t <= until]
        if kept:
            metrics.append(
                m.model_copy(update={"timestamps": [t for t, _ in kept], "values": [v for _, v in kept]})
            )
    window = TimeWindow(start=bundle.incident.window.start, end=alert + timedelta(minutes=ahead))
    return bundle.model_copy(
        update={
            "metrics": metrics,
            "logs": [r for r in bundle.logs if r.timestamp <= until],
            "spans": [s for s in bundle.spans if s.start <= until],
            "incident": bundle.incident.model_copy(update={"window": window}),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--seen", type=float, default=5.0, help="seconds after the alert the data reaches")
    parser.add_argument("--ahead", type=float, default=30.0, help="minutes after the alert the window ends")
    parser.add_argument("--json", type=Path, help="write rank of truth and top type per case here")
    args = parser.parse_args()
    settings = eval_settings(Settings())
    out: dict[str, dict[str, object]] = {}
    for folder in args.folders:
        for ref in discover(folder):
            rec = load_case(ref)
            if rec.truth is None:
                continue
            suspects = rank_suspects(live_view(rec, settings, args.seen, args.ahead))
            names = [s.service for s in suspects]
            rank = names.index(rec.truth.service) + 1 if rec.truth.service in names else None
            top_type = suspects[0].fault_type.value if suspects else None
            out[f"{folder}/{rec.case_id}"] = {"rank": rank, "type": top_type, "top": names[:3]}
            right = rank == 1 and top_type == rec.truth.fault_type.value
            print(f"{rec.case_id:40s} rank {rank}  top {names[:1]} {top_type}{'' if right else '  <-'}")
    first = sum(1 for v in out.values() if v["rank"] == 1)
    print(f"{first} of {len(out)} ranked first")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

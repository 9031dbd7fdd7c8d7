"""Ablation of the statistical engine: AC@k and fault-type accuracy with each technique turned off.

    .venv/bin/python scripts/ablation.py .data/petshop .data/sockshop-rcd .data/nezha
    .venv/bin/python scripts/ablation.py .data/nezha --only full --verbose
    .venv/bin/python scripts/ablation.py .data/nezha --alert-delay 180 --only=full --only=-event_onset

Cases are loaded once with the evaluation importers (``opsagent.evals.discover``) and ranked with
``rank_suspects(bundle, EngineOptions(...))`` directly, so one run compares every variant on the
same evidence. ``opsagent eval`` is the end-to-end figure; this is the per-technique one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.domain import EvidenceBundle, RecordedIncident
from opsagent.evals.discover import discover, load_case
from opsagent.evals.harness import delayed_alert
from opsagent.evals.replay import replay_sources
from opsagent.evidence.base import collect

# The full engine, each switch of each stage turned off on its own, and every switch off.
VARIANTS: dict[str, EngineOptions] = {
    "full": DEFAULT_OPTIONS,
    **{f"-{name}": DEFAULT_OPTIONS.with_(**{name: False}) for name in DEFAULT_OPTIONS.switches()},
    "none": DEFAULT_OPTIONS.with_(**dict.fromkeys(DEFAULT_OPTIONS.switches(), False)),
}


def bundle_of(rec: RecordedIncident, alert_delay: float = 0.0) -> EvidenceBundle:
    """The bundle the replayed sources collect (window, and reference period if any), with the
    alert moved by ``alert_delay`` seconds as ``opsagent eval --alert-delay`` moves it."""
    rec = delayed_alert(rec, alert_delay)
    return collect(rec.incident, replay_sources(rec))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--only", action="append", choices=sorted(VARIANTS), help="variants to run")
    parser.add_argument("--case", help="glob on case ids")
    parser.add_argument("--verbose", action="store_true", help="one line per case (first variant)")
    parser.add_argument("--alert-delay", type=float, default=0.0, help="move every alert this many seconds")
    args = parser.parse_args()
    names = args.only or list(VARIANTS)

    cases: list[tuple[str, str, RecordedIncident, EvidenceBundle]] = []
    for path in args.paths:
        for ref in discover(path, case_glob=args.case):
            rec = load_case(ref)
            cases.append((rec.dataset, ref.case_id, rec, bundle_of(rec, args.alert_delay)))
    print(f"{len(cases)} cases loaded", file=sys.stderr)

    header = (
        f"{'variant':22} {'dataset':14} {'n':>3} {'AC@1':>5} {'AC@3':>5} {'AC@5':>5} {'type':>5} {'med s':>6}"
    )
    print(header)
    for vi, name in enumerate(names):
        options = VARIANTS[name]
        per: dict[str, list[tuple[int | None, bool | None, float]]] = defaultdict(list)
        for dataset, case_id, rec, bundle in cases:
            started = time.perf_counter()
            suspects = rank_suspects(bundle, options)
            seconds = time.perf_counter() - started
            assert rec.truth is not None
            ranking = [s.service for s in suspects]
            rank = ranking.index(rec.truth.service) + 1 if rec.truth.service in ranking else None
            typed: bool | None = None
            if rank == 1 and rec.truth.fault_type is not None:
                typed = suspects[0].fault_type == rec.truth.fault_type
            per[dataset].append((rank, typed, seconds))
            if args.verbose and vi == 0:
                top = ", ".join(f"{s.service}:{s.score:.2f}:{s.fault_type.value}" for s in suspects[:3])
                print(
                    f"  {dataset:9} {case_id:32} truth={rec.truth.service}/{rec.truth.fault_label}"
                    f" rank={rank} {seconds:.2f}s | {top}"
                )
        for dataset in sorted(per):
            rows = per[dataset]
            ranks = [r for r, _, _ in rows]
            typed_rows = [t for _, t, _ in rows if t is not None]

            def ac(k: int, ranks: list[int | None] = ranks) -> float:
                return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)

            type_acc = sum(typed_rows) / len(typed_rows) if typed_rows else float("nan")
            med = statistics.median(s for _, _, s in rows)
            print(
                f"{name:22} {dataset:14} {len(rows):3d} {ac(1):5.2f} {ac(3):5.2f} {ac(5):5.2f}"
                f" {type_acc:5.2f} {med:6.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

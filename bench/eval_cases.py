"""Seconds per recorded case, end to end, as ``opsagent eval`` measures them (reading the recording
included), per dataset: median, p95 and the reading's share.

    python -m bench eval_cases                       # the public datasets under .data (make data)
    OPSAGENT_BENCH_EVAL_PATHS=.data/nezha python -m bench eval_cases

Runs every case in one process, in dataset order (as ``--jobs 1``), with the offline reasoner; the
machine's load average is printed with the figures, since the 2-core machines these run on are
often shared. Skipped (exit 0) when no dataset is there.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from opsagent.config import Settings
from opsagent.evals.accuracy import percentile
from opsagent.evals.discover import discover
from opsagent.evals.harness import CaseResult, run_cases

DEFAULT_PATHS = (".data/sockshop-rcd", ".data/petshop", ".data/nezha")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    raw = os.environ.get("OPSAGENT_BENCH_EVAL_PATHS")
    paths = [Path(p) for p in (raw.split(",") if raw else DEFAULT_PATHS)]
    paths = [p for p in paths if p.exists()]
    if not paths:
        print("no dataset found (make data); skipped")
        return 0
    refs = [ref for path in paths for ref in discover(path)]
    print(f"{len(refs)} cases from {', '.join(map(str, paths))}; load average before: {_load()}")
    results = run_cases(refs, Settings(), "offline")
    print(f"load average after: {_load()}")
    by_dataset: dict[str, list[CaseResult]] = {}
    for result in results:
        by_dataset.setdefault(result.dataset, []).append(result)
    print(f"{'dataset':<14} {'cases':>5} {'median s':>9} {'p95 s':>7} {'reading (median)':>17}")
    for name, cases in by_dataset.items():
        seconds = [c.seconds for c in cases]
        reading = statistics.median(c.load_seconds for c in cases)
        print(
            f"{name:<14} {len(cases):>5} {percentile(seconds, 50):>9.2f} {percentile(seconds, 95):>7.2f}"
            f" {reading:>17.2f}"
        )
    errors = sum(1 for r in results if r.error)
    if errors:
        print(f"{errors} case(s) failed in the pipeline")
    return 1 if errors else 0

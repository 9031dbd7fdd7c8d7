"""Scoring of rankings against ground truth: AC@k, Avg@5, fault-type accuracy, runbook fit, time per case.

Pure functions. AC@k is the share of cases whose true root-cause service is among the top ``k``
of the ranking; Avg@5 is the mean of AC@1 … AC@5 (RCAEval's definition). Datasets are scored
separately and never pooled; within a dataset, cases are also grouped by their true fault type.
Runbook fit is the share of cases whose first runbook offered (the one whose remediation the
findings give) is right: the runbook the truth names, or where it names none, one that lists the
case's true fault type among its own (``runbook_fits``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from opsagent.domain import GroundTruth, RunbookMatch

KS = (1, 3, 5)
UNLABELLED = "unknown"


@dataclass(frozen=True)
class CaseScore:
    """What scoring needs of one evaluated case."""

    dataset: str
    fault_type: str | None
    rank_of_truth: int | None
    fault_type_correct: bool | None
    seconds: float
    runbook_fits: bool | None = None


def rank_of(ranking: Sequence[str], truth: str) -> int | None:
    """1-based position of the true service in the ranking (first occurrence), or None."""
    for position, service in enumerate(ranking, start=1):
        if service == truth:
            return position
    return None


def runbook_fits(truth: GroundTruth | None, offered: list[RunbookMatch]) -> bool | None:
    """Whether the first runbook offered is right: the one the truth names, where it names one
    (a native recording's expected runbook), else one that lists the true fault type; None when the
    truth says neither."""
    if truth is None or (truth.runbook is None and truth.fault_type is None):
        return None
    if not offered:
        return False
    if truth.runbook is not None:
        return offered[0].id == truth.runbook
    return truth.fault_type is not None and truth.fault_type.value in offered[0].fault_types


def ac_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of cases with the truth in the top k (0.0 for no cases)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def avg_at_5(ranks: Sequence[int | None]) -> float:
    return sum(ac_at(ranks, k) for k in range(1, 6)) / 5


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(cases: Sequence[CaseScore]) -> dict[str, float | int | None]:
    """The stable summary keys for a group of cases, plus fault-type accuracy and timing."""
    ranks = [c.rank_of_truth for c in cases]
    labelled = [c.fault_type_correct for c in cases if c.fault_type_correct is not None]
    fits = [c.runbook_fits for c in cases if c.runbook_fits is not None]
    seconds = [c.seconds for c in cases]
    return {
        "cases": len(cases),
        "ac@1": round(ac_at(ranks, 1), 4),
        "ac@3": round(ac_at(ranks, 3), 4),
        "ac@5": round(ac_at(ranks, 5), 4),
        "avg@5": round(avg_at_5(ranks), 4),
        "fault_type_accuracy": round(sum(labelled) / len(labelled), 4) if labelled else None,
        "runbook_fit": round(sum(fits) / len(fits), 4) if fits else None,
        "median_seconds": round(percentile(seconds, 50), 4) if seconds else None,
        "p95_seconds": round(percentile(seconds, 95), 4) if seconds else None,
    }


def by_dataset(cases: Sequence[CaseScore]) -> dict[str, dict[str, object]]:
    """Per dataset (in first-seen order): the summary and ``by_fault`` with one summary per fault type."""
    groups: dict[str, list[CaseScore]] = defaultdict(list)
    for case in cases:
        groups[case.dataset].append(case)
    out: dict[str, dict[str, object]] = {}
    for dataset, members in groups.items():
        faults: dict[str, list[CaseScore]] = defaultdict(list)
        for case in members:
            faults[case.fault_type or UNLABELLED].append(case)
        entry: dict[str, object] = dict(summarise(members))
        entry["by_fault"] = {fault: summarise(faults[fault]) for fault in sorted(faults)}
        out[dataset] = entry
    return out

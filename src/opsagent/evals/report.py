"""The evaluation report document (``--json``) and the rows of the terminal tables.

The names ``reasoner``, ``datasets`` (``cases``, ``ac@1``, ``ac@3``, ``ac@5``, ``avg@5``,
``by_fault``) and ``cases`` (``dataset``, ``id``, ``truth``, ``ranking``, ``rank_of_truth``,
``seconds``) are a public contract read by other tools: add fields, never rename them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opsagent.evals.accuracy import CaseScore, by_dataset
from opsagent.evals.harness import CaseResult

SCHEMA_VERSION = 1


def case_scores(results: Sequence[CaseResult]) -> list[CaseScore]:
    return [
        CaseScore(
            dataset=r.dataset,
            fault_type=r.truth.get("fault_type"),
            rank_of_truth=r.rank_of_truth,
            fault_type_correct=r.fault_type_correct,
            seconds=r.seconds,
            runbook_fits=r.runbook_fits,
        )
        for r in results
    ]


def build_document(
    results: Sequence[CaseResult],
    reasoner: str,
    *,
    paths: Sequence[str] = (),
    wall_seconds: float = 0.0,
    alert_delay: float = 0.0,
) -> dict[str, Any]:
    datasets = by_dataset(case_scores(results))
    for name, entry in datasets.items():
        entry["errors"] = sum(1 for r in results if r.dataset == name and r.error)
    tokens = [r.tokens for r in results if r.tokens]
    doc: dict[str, Any] = {
        "reasoner": reasoner,
        "datasets": datasets,
        "cases": [r.to_json() for r in results],
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "paths": list(paths),
        "wall_seconds": round(wall_seconds, 2),
        # seconds every recorded alert was moved by (``runner.delayed_alert``); 0 as recorded
        "alert_delay_seconds": alert_delay,
    }
    llm = [r for r in results if r.llm_seconds is not None]
    if llm:
        doc["fell_back_cases"] = sum(1 for r in llm if r.fell_back)
        doc["llm_seconds"] = round(sum(r.llm_seconds or 0.0 for r in llm), 3)
    if tokens:
        doc["tokens"] = {
            "prompt": sum(t.get("prompt", 0) for t in tokens),
            "completion": sum(t.get("completion", 0) for t in tokens),
        }
    return doc

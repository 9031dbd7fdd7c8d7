"""Every demo incident ranks its true root cause first, with the right fault type and its evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.analysis.engine import rank_suspects
from opsagent.domain import EvidenceBundle
from opsagent.evals.native import load_native

INCIDENTS = Path(__file__).resolve().parents[2] / "examples" / "incidents"
FOLDERS = sorted(p for p in INCIDENTS.iterdir() if (p / "incident.yaml").is_file())


def test_there_are_demo_incidents() -> None:
    assert FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_true_root_cause_first_with_its_fault_type(folder: Path) -> None:
    rec = load_native(folder)
    assert rec.truth is not None
    bundle = EvidenceBundle(
        incident=rec.incident, metrics=rec.metrics, logs=rec.logs, spans=rec.spans, topology=rec.topology
    )
    suspects = rank_suspects(bundle)
    top = suspects[0]
    assert top.service == rec.truth.service, [s.service for s in suspects[:3]]
    assert top.fault_type == rec.truth.fault_type
    kinds = {e.kind for e in top.evidence}
    assert "metric" in kinds
    assert all(e.service == top.service and e.id for e in top.evidence)

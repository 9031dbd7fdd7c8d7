"""The ``Reasoner`` protocol: evidence (and the engine's suspects) in, findings out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from opsagent.domain import EvidenceBundle, Findings, ReasonerTrace, Suspect


@dataclass(frozen=True)
class Reasoning:
    findings: Findings
    trace: ReasonerTrace


class Reasoner(Protocol):
    name: str

    def reason(self, bundle: EvidenceBundle, suspects: list[Suspect]) -> Reasoning:
        """Findings for the bundle. Must not raise on weak evidence: say so in the findings."""
        ...

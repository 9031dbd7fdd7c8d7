"""The offline reasoner: findings straight from the statistical engine, no LLM.

Root causes are the engine's suspects whose evidence clears a minimum strength, with a confidence
that reflects both how strong the top suspect is and how clearly it leads the next one. Remediation
comes from the runbook that best fits the incident and the top root cause's fault type.
"""

from __future__ import annotations

import math
import time

from opsagent.domain import (
    EvidenceBundle,
    FaultType,
    Findings,
    ReasonerTrace,
    RootCause,
    RunbookMatch,
    Suspect,
)
from opsagent.reasoning.base import Reasoning

# A suspect scoring below this (log1p of ~3 robust sd) has no evidence worth calling a cause.
MIN_ROOT_CAUSE_SCORE = math.log1p(3.0)
# A top score at this level (log1p of ~20 robust sd) is as strong as evidence gets.
STRONG_SCORE = math.log1p(20.0)
MAX_ROOT_CAUSES = 5
# Preference for a runbook that lists the suspected fault type, added to its retrieval score.
FAULT_TYPE_FIT = 0.3


def confidences(scores: list[float]) -> list[float]:
    """Confidence per ranked score: strength of the evidence times the lead over the runner-up."""
    if not scores:
        return []
    strength = min(1.0, scores[0] / STRONG_SCORE)
    total = sum(scores[:2]) or 1.0
    return [
        round(min(1.0, strength * (s / total) * (2.0 if i == 0 else 1.0)), 3) for i, s in enumerate(scores)
    ]


def contradicts(book: RunbookMatch, fault_type: str | None) -> bool:
    """Whether a runbook is written for other faults than the diagnosed one.

    A runbook that lists no fault type (one for the alerting pipeline itself) contradicts nothing;
    neither does a diagnosis without a type.
    """
    known = fault_type is not None and fault_type != FaultType.UNKNOWN.value
    return known and bool(book.fault_types) and fault_type not in book.fault_types


def best_runbooks(runbooks: list[RunbookMatch], fault_type: str | None) -> list[RunbookMatch]:
    """Runbooks that do not contradict the diagnosed fault first, each group by retrieval score plus
    fit to the fault type.

    An alert names a symptom and the runbooks written for it: HighLatency matches the slow-upstream
    runbook whatever makes the service slow. The diagnosis names the cause. A runbook written for
    another fault type would pair the findings' cause with another fault's remediation (the CPU of
    checkout saturated, "look for the slow upstream"), so it comes after every runbook that does not
    contradict the diagnosis, however well it matched the alert's words or name.
    """

    def order(book: RunbookMatch) -> tuple[bool, float]:
        fits = fault_type is not None and fault_type in book.fault_types
        return contradicts(book, fault_type), -(book.score + (FAULT_TYPE_FIT if fits else 0.0))

    return sorted(runbooks, key=order)


class OfflineReasoner:
    name = "offline"

    def reason(self, bundle: EvidenceBundle, suspects: list[Suspect]) -> Reasoning:
        started = time.perf_counter()
        strong = [s for s in suspects if s.score >= MIN_ROOT_CAUSE_SCORE][:MAX_ROOT_CAUSES]
        confs = confidences([s.score for s in strong])
        root_causes = [
            RootCause(
                service=s.service,
                fault_type=s.fault_type,
                confidence=c,
                summary=s.evidence[0].summary if s.evidence else "",
                evidence=s.evidence,
            )
            for s, c in zip(strong, confs, strict=True)
        ]
        notes: list[str] = []
        if not root_causes:
            notes.append("no service's evidence clears the anomaly threshold; nothing is named as a cause")
        top_fault = root_causes[0].fault_type.value if root_causes else None
        books = best_runbooks(bundle.runbooks, top_fault)
        remediation = list(books[0].remediation) if books else []
        summary = (
            f"Most likely root cause: {root_causes[0].service} ({root_causes[0].fault_type.value}), "
            f"confidence {root_causes[0].confidence:.2f}. {root_causes[0].summary}"
            if root_causes
            else "No clear root cause in the evidence."
        )
        findings = Findings(
            reasoner=self.name,
            root_causes=root_causes,
            ranking=[s.service for s in suspects],
            remediation=remediation,
            summary=summary,
            notes=notes,
        )
        trace = ReasonerTrace(reasoner=self.name, seconds=round(time.perf_counter() - started, 4))
        return Reasoning(findings=findings, trace=trace)

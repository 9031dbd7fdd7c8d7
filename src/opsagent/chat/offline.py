"""The chat's answer without an LLM: the question and the conversation so far decide what is said.

A first question gets the findings in short paragraphs. A follow-up gets what it asks about (next
steps, evidence, logs, the runbook, other candidates, missing evidence, one named service) and does
not repeat what earlier answers of the conversation already said. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

from opsagent.domain import Investigation

Topic = Literal["steps", "evidence", "logs", "runbook", "others", "gaps", "summary"]

# Words that say what a follow-up is about, first match wins (order: the most specific first).
_TOPICS: list[tuple[Topic, re.Pattern[str]]] = [
    ("logs", re.compile(r"\blog(s|ged|ging)?\b|\berrors? messages?\b|\btemplates?\b")),
    ("runbook", re.compile(r"\brunbooks?\b|\bplaybooks?\b")),
    ("gaps", re.compile(r"\bmissing\b|\bgaps?\b|\bblind\b|\bcould(n't| not) see\b|\bsources?\b")),
    ("others", re.compile(r"\bothers?\b|\belse\b|\balternatives?\b|\binstead\b|\bsecond\b|\bcandidates?\b")),
    (
        "evidence",
        re.compile(r"\bwhy\b|\bevidence\b|\bhow do you know\b|\bproof\b|\bsure\b|\bshow\b|\bmetrics?\b"),
    ),
    (
        "steps",
        re.compile(
            r"\bdo\b|\bfix\w*\b|\bnext\b|\bfirst\b|\bmitigat\w*|\bremediat\w*|\bactions?\b|\bsteps?\b|\brollback\b"
            r"|\brestart\w*\b"
        ),
    ),
]


class Turn(Protocol):
    """One earlier message (``chat.ChatMessage``)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


def topic_of(message: str) -> Topic:
    text = message.lower()
    for topic, pattern in _TOPICS:
        if pattern.search(text):
            return topic
    return "summary"


def _summary(inv: Investigation, executed: Sequence[tuple[str, str]]) -> list[str]:
    f = inv.findings
    parts = [f.summary or "No clear root cause in the evidence."]
    if len(f.root_causes) > 1:
        parts.append(_others(inv))
    if inv.runbooks:
        parts.append(f"Runbook: {inv.runbooks[0].title} ({inv.runbooks[0].id}).")
    if f.remediation:
        parts.append(_steps(inv))
    if executed:
        parts.append(_executed(executed))
    if inv.gaps:
        parts.append(_gaps(inv))
    return parts


def _others(inv: Investigation) -> str:
    rest = inv.findings.root_causes[1:4]
    if not rest:
        return "No other candidate came close to the top cause."
    return "Other candidates: " + ", ".join(f"{rc.service} ({rc.confidence:.2f})" for rc in rest) + "."


def _steps(inv: Investigation) -> str:
    f = inv.findings
    if not f.remediation and not f.actions:
        return "No runbook step or catalogued action fits the findings."
    out = "Next steps: " + " ".join(f"{i}. {s}" for i, s in enumerate(f.remediation[:4], 1))
    if f.actions:
        out += " Proposed actions: " + ", ".join(
            f"{a.action_id} on {a.target.service} ({a.risk.value})" for a in f.actions[:4]
        )
        out += "."
    return out


def _executed(executed: Sequence[tuple[str, str]]) -> str:
    return "Actions run (audit log): " + ", ".join(f"{a} on {s}" for a, s in executed) + "."


def _gaps(inv: Investigation) -> str:
    if not inv.gaps:
        return "Nothing is missing: every configured source answered."
    return "Missing evidence: " + "; ".join(f"{g.source}: {g.reason}" for g in inv.gaps)


def _evidence(inv: Investigation, service: str | None = None) -> str:
    causes = inv.findings.root_causes
    chosen = next((rc for rc in causes if rc.service == service), causes[0] if causes else None)
    if chosen is None:
        return "The engine found no root cause to show evidence for."
    lines = [f"{chosen.service} ({chosen.fault_type.value}, confidence {chosen.confidence:.2f}) rests on:"]
    lines += [f"- {e.summary}" for e in chosen.evidence[:6]]
    return "\n".join(lines)


def _logs(inv: Investigation) -> str:
    logs = inv.log_summary
    changed = [t for t in (logs.templates if logs else []) if t.change != "steady"][:5]
    if not changed:
        return "No log template is new or increased in the incident period."
    lines = ["New or increased log templates:"]
    lines += [
        f"- {t.service}: {' '.join(t.template.split())[:200]} ({t.normal_count} before, {t.incident_count} during)"
        for t in changed
    ]
    return "\n".join(lines)


def _runbook(inv: Investigation) -> str:
    if not inv.runbooks:
        return "No runbook matched this incident."
    best = inv.runbooks[0]
    steps = " ".join(f"{i}. {s}" for i, s in enumerate(best.remediation[:5], 1))
    return f"Runbook {best.title} ({best.id})" + (f": {steps}" if steps else ".")


def _service_named(inv: Investigation, message: str) -> str | None:
    words = set(re.findall(r"[a-z0-9][a-z0-9._-]*", message.lower()))
    for s in inv.suspects:
        if s.service.lower() in words:
            return s.service
    return None


def _about_service(inv: Investigation, service: str) -> str:
    ranking = [s.service for s in inv.suspects]
    rank = ranking.index(service) + 1
    cause = next((rc for rc in inv.findings.root_causes if rc.service == service), None)
    head = f"{service} ranks {rank} of {len(ranking)}"
    if cause is None:
        return head + "; the engine does not count it among the root causes."
    return head + ". " + _evidence(inv, service)


def offline_reply(
    inv: Investigation,
    message: str,
    history: Sequence[Turn] = (),
    executed: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Paragraphs answering ``message`` from the investigation, given the conversation so far."""
    said = "\n".join(t.content for t in history if t.role == "assistant")
    service = _service_named(inv, message)
    topic = topic_of(message)
    if service is not None and topic in ("summary", "evidence"):
        return [_about_service(inv, service)]
    if topic == "summary":
        parts = _summary(inv, executed)
        if not said:
            return parts
        # A follow-up: what was not said yet, after a reminder of the conclusion.
        fresh = [p for p in parts[1:] if p not in said]
        top = inv.findings.root_causes[0] if inv.findings.root_causes else None
        reminder = (
            f"As said above, the likely cause is {top.service} ({top.fault_type.value}, "
            f"confidence {top.confidence:.2f})."
            if top
            else "As said above, the evidence shows no clear root cause."
        )
        return [reminder, *(fresh or ["Ask about the evidence, the logs, the runbook or the next steps."])]
    answer = {
        "steps": lambda: _steps(inv) + (" " + _executed(executed) if executed else ""),
        "evidence": lambda: _evidence(inv),
        "logs": lambda: _logs(inv),
        "runbook": lambda: _runbook(inv),
        "others": lambda: _others(inv),
        "gaps": lambda: _gaps(inv),
    }[topic]()
    if said and answer in said:
        return [f"Still the same as above: {answer}"]
    return [answer]

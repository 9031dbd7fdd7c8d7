"""Is a chat answer grounded? Its citations, the services it names, the actions it says ran.

Findings from the LLM are validated as structured JSON (``reasoning/llm.py``). A chat answer is
prose, so it is read for what it asserts, and each assertion is checked against what the turn
knows:

- every token shaped like an evidence id (``metric:…``, ``log:…``, ``pattern:…``; the kinds of the
  ids the turn can cite) must be an id it can cite;
- every name in a service position (``root cause: X``, ``the X service``, ``service X``,
  ``restart X``) must be a service in the evidence. A plain English word there (``the affected
  service``) is not taken for a name; an identifier (``billing-ghost``, ``svc_2``), a quoted name
  or the subject of "root cause" is;
- a claim that an action ran (``I restarted …``, ``… has been rolled back``) needs an execution in
  the incident's audit log, for the service the claim names; "all"/"every" claims need one for
  every service.

Each check errs towards rejecting: a rejected answer gets one retry with the problems listed, then
the turn falls back to the offline answer and says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Evidence-id kinds the engine emits; the ids a turn can cite add their own kinds to these.
_BASE_ID_KINDS = frozenset({"metric", "log", "trace", "pattern", "topology", "impact", "span"})
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9]|[A-Za-z0-9]"
_QUOTE = r"[`'\"*]*"
# Words that stand before or after "service" in ordinary prose: not names.
_PROSE_WORDS = """a an the this that these those each every any another other same which what whose one no some
    all both its their our your my his her it is was are were be been being has have had not of to for
    in on at by with as from and or but if then than so such also only main primary single whole entire
    affected failing failed faulty broken healthy unhealthy degraded slow downstream upstream dependent
    calling called culprit root suspect suspected top first second third next previous last backend
    frontend web external internal given named shared critical new old underlying real actual likely
    possibly possible probable probably problematic responsible originating impacted most least more
    less mesh level levels owner owners account accounts name names call calls itself cause causes
    issue issues problem problem's incident alert alerts request requests latency errors error traffic
    memory cpu disk network database db cache queue api http grpc"""
_PROSE = frozenset(_PROSE_WORDS.split())
_ROOT_CAUSE = re.compile(
    rf"root[ -]cause(?:s)?\s*(?:is|was|appears to be|seems to be|looks like|:|=|-|—)\s*"
    rf"(?:(?:likely|probably|most likely|possibly|the|a|service)\s+)*{_QUOTE}({_NAME}){_QUOTE}",
    re.IGNORECASE,
)
_BEFORE_SERVICE = re.compile(
    rf"{_QUOTE}({_NAME}){_QUOTE}\s+(?:micro)?(?:service|deployment|pod|container)s?\b", re.IGNORECASE
)
_AFTER_SERVICE = re.compile(
    rf"\b(?:micro)?(?:service|deployment|pod|container)s?\s+(?:named\s+|called\s+)?{_QUOTE}({_NAME}){_QUOTE}",
    re.IGNORECASE,
)
_VERBS = (
    r"restarted|rolled[ -]back|scaled(?: (?:up|down|out|in))?|executed|ran|applied|deleted|killed|"
    r"drained|flushed|rebooted|redeployed|reverted|failed[ -]over|cordoned|purged|recycled|bounced|"
    r"terminated|evicted|patched|triggered"
)
_ACTOR_CLAIM = re.compile(
    rf"\b(?:I|I've|I have|we|we've|we have|opsagent|the agent|the assistant|the system|autonomy)\s+"
    rf"(?:(?:have|has|had|already|just|successfully|now|also|automatically)\s+)*(?:{_VERBS})\b",
    re.IGNORECASE,
)
_PASSIVE_CLAIM = re.compile(
    rf"\b(?:has|have|had)\s+(?:(?:now|already|just|successfully|automatically)\s+)*been\s+"
    rf"(?:(?:now|already|just|successfully|automatically)\s+)*(?:{_VERBS})\b",
    re.IGNORECASE,
)
_ALL = re.compile(r"\b(?:all|every|each)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_TRAILING = ".,;:)]}>'\"`*"
_QUOTES = "`'\"*"


@dataclass(frozen=True)
class Grounding:
    """What a chat turn's answer may rest on."""

    services: frozenset[str]
    citable: frozenset[str]
    # (action id, service) of every action the audit log records as started for the incident.
    executed: tuple[tuple[str, str], ...] = ()
    _id_kinds: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kinds = {c.split(":", 1)[0].lower() for c in self.citable if ":" in c}
        object.__setattr__(self, "_id_kinds", frozenset(_BASE_ID_KINDS | kinds))

    @classmethod
    def of(
        cls, services: Iterable[str], citable: Iterable[str], executed: Iterable[tuple[str, str]] = ()
    ) -> Grounding:
        return cls(frozenset(services), frozenset(citable), tuple(executed))

    def _known(self, name: str) -> bool:
        lowered = name.lower()
        return any(s.lower() == lowered for s in self.services)

    @staticmethod
    def _identifier(name: str, quoted: bool) -> bool:
        """Quoted, or shaped like an identifier (``billing-ghost``, ``svc_2``, ``BillingGhost``)."""
        return quoted or bool(re.search(r"[-_.\d]", name)) or name not in (name.lower(), name.capitalize())

    def problems(self, text: str) -> list[str]:
        """Everything the answer asserts that the turn cannot back; empty when it is grounded."""
        out: list[str] = []
        out += self._citation_problems(text)
        out += self._service_problems(text)
        out += self._claim_problems(text)
        return list(dict.fromkeys(out))

    def _citation_problems(self, text: str) -> list[str]:
        kinds = "|".join(sorted(re.escape(k) for k in self._id_kinds))
        found = re.findall(rf"\b(?:{kinds}):[^\s,;()\[\]{{}}`'\"]+", text, re.IGNORECASE)
        unknown = [i.rstrip(_TRAILING) for i in found if i.rstrip(_TRAILING) not in self.citable]
        return [f"cites evidence id {i!r}, which is not in the evidence" for i in dict.fromkeys(unknown)]

    def _service_problems(self, text: str) -> list[str]:
        out: list[str] = []
        # A plain word counts as a name only before "service" ("the billing service"), where prose
        # rarely puts anything but a name or one of the _PROSE words; elsewhere only identifiers do.
        for pattern, plain_words in ((_ROOT_CAUSE, False), (_BEFORE_SERVICE, True), (_AFTER_SERVICE, False)):
            for match in pattern.finditer(text):
                name = match.group(1)
                if self._known(name) or name.lower() in _PROSE:
                    continue
                quoted = text[match.start(1) - 1 : match.start(1)] in _QUOTES
                if plain_words or self._identifier(name, quoted):
                    what = "as a root cause" if pattern is _ROOT_CAUSE else "as a service"
                    out.append(f"names {name!r} {what}, but no such service is in the evidence")
        return out

    def _claim_problems(self, text: str) -> list[str]:
        out: list[str] = []
        ran = {service.lower() for _, service in self.executed}
        for sentence in _SENTENCE.findall(text):
            if not (_ACTOR_CLAIM.search(sentence) or _PASSIVE_CLAIM.search(sentence)):
                continue
            claim = sentence.strip()
            if not ran:
                out.append(f"claims an action ran ({claim[:80]!r}), but the audit log records none")
                continue
            named = {s.lower() for s in self.services if re.search(rf"\b{re.escape(s)}\b", sentence, re.I)}
            if _ALL.search(sentence) and not self.services <= {s for s in self.services if s.lower() in ran}:
                out.append(f"claims actions ran on every service ({claim[:80]!r}); the audit log disagrees")
            elif named - ran:
                out.append(
                    f"claims an action ran on {', '.join(sorted(named - ran))}, but the audit log records "
                    "no action there"
                )
        return out

"""Log condensation: mine templates, and find new or sharply increased templates per service.

Templates come from a masker rather than a learned parser: every whitespace-separated token that
carries a digit (ids, counts, durations, versions, addresses) becomes ``<*>``, long quoted strings
become ``<str>``, and
the template keeps the first ``TEMPLATE_TOKENS`` tokens, where a log statement's constant text
lives. That is deterministic, needs no training pass over the normal period, and costs one regex
per distinct message.

A code location (``Class#line``, ``file.ext:line``, a stack frame ``pkg.Class.method(File.java:42)``)
carries digits but is the most constant part of a line: it names the log statement. It is kept as
it is, and when a line has one, the template ends ``LOCATION_CONTEXT_TOKENS`` constant tokens after
it: the payload that follows (a printed object, a list of ids, a station name) varies per call, with
or without digits, and would split one statement into many templates.

A template's shift is scored as a Poisson surprise: with ``n0`` occurrences in the normal period
the expected incident count is ``(n0 + PRIOR) * T1 / T0``; the signed root of the likelihood-ratio
statistic ``sqrt(2 * (n1 log(n1 / e) - (n1 - e)))`` reads like a z-score, so log and metric evidence
share one scale (both enter the ranking as ``log1p(z)``).
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from opsagent.domain import EvidenceBundle, LogRecord

_QUOTED = re.compile(r"\"[^\"]{24,}\"|'[^']{24,}'")
# Code locations: a class or file, then "#" or ":" and a line number, optionally in a stack frame's
# parentheses (Logback's %C{1}#%L, Python's/Go's file.py:42, Java's (Foo.java:42)).
_LOCATION = re.compile(
    r"^\(?[A-Za-z_$][\w$.\[\]/-]*(?:#\d+|\.[A-Za-z]{1,5}:\d+)\)?[,:;]?$|^[\w$.]+\([\w$]+\.[A-Za-z]{1,5}:\d+\)$"
)
_DIGIT = re.compile(r"\d")
# Not "null": it is mostly an empty field in a printed payload ("data=null", "PaymentId: null") on
# success paths; a null dereference says "NullPointerException" or "nil pointer". Measured on Nezha
# Train Ticket, whose INFO lines print responses whole: AC@3 0.71 -> 0.75 without it.
_ERROR_WORDS = re.compile(
    r"error|exception|fail|fatal|panic|timeout|timed out|refused|denied|unavailable|oom|traceback|"
    r"nil pointer|status\s*=?\s*5\d\d|code\s*=\s*(?:internal|unavailable|unknown)",
    re.I,
)
_LEVEL_IN_TEXT = re.compile(r"\b(ERROR|FATAL|CRITICAL|SEVERE|PANIC)\b")
# Substrings at least one of which every match of the two patterns above contains (lower case).
_ERROR_HINTS = (
    "error",
    "exception",
    "fail",
    "fatal",
    "panic",
    "timeout",
    "timed out",
    "refused",
    "denied",
    "unavailable",
    "oom",
    "traceback",
    "nil pointer",
    "status",
    "code",
    "critical",
    "severe",
)
# ``_ERROR_WORDS`` without IGNORECASE, for lower-cased ASCII text: there it finds the same matches
# (ASCII lower-casing maps one character to one, and only letters), several times faster.
_ERROR_WORDS_LOWER = re.compile(_ERROR_WORDS.pattern)
_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "panic", "severe", "alert", "emerg"}
# The constant part of a log statement sits at its start; after ~20 tokens come payloads (objects
# printed whole, stack frames) whose words vary without digits.
TEMPLATE_TOKENS = 20
# Constant (unmasked) tokens kept after a code location: enough to show what the statement says
# (its method and first words), few enough that its varying payload is left out.
LOCATION_CONTEXT_TOKENS = 3
# Characters of a message that are masked and searched for error words: a log statement says what
# happened at its start; the rest is payload.
TEMPLATE_SCAN_CHARS = 240
# Templates are capped in length so one huge stack trace doesn't become its own budget problem.
MAX_TEMPLATE_CHARS = 240
# Add-half smoothing of the normal count: a template never seen before is not infinitely surprising.
PRIOR = 0.5
# A template must at least double its rate to count as a shift.
MIN_RATE_RATIO = 2.0
# Error templates are what a failing service writes; other new templates (a deploy, a config
# reload) are context. The weight scales a non-error template's surprise down.
NON_ERROR_WEIGHT = 0.5


def template_of(message: str) -> str:
    # Token-level masking of the first TEMPLATE_TOKENS tokens: a token with a digit anywhere is a
    # variable as a whole (ids, counts, "id=42", "v2.14.0"); cheaper than a regex over the line.
    text = message[:TEMPLATE_SCAN_CHARS]
    if '"' in text or "'" in text:
        text = _QUOTED.sub("<str>", text)
    tokens = text.split(None, TEMPLATE_TOKENS)[:TEMPLATE_TOKENS]
    out: list[str] = []
    after: int | None = None  # constant tokens kept since a code location
    for t in tokens:
        if not _DIGIT.search(t):
            out.append(t)
            if after is not None:
                after += 1
                if after >= LOCATION_CONTEXT_TOKENS:
                    break
        elif after is None and _LOCATION.match(t):
            out.append(t)
            after = 0
        else:
            out.append("<*>")
    return " ".join(out)[:MAX_TEMPLATE_CHARS]


@functools.lru_cache(maxsize=65_536)
def line_template_and_error(level: str, head: str) -> tuple[str, bool]:
    """``template_of`` and ``is_error`` of a line from its level and first TEMPLATE_SCAN_CHARS
    characters (all either reads), cached: neighbouring incidents' windows share most of their lines."""
    return template_of(head), _is_error_text(level, head)


def _is_error_text(level: str, head: str) -> bool:
    if level.lower() in _ERROR_LEVELS:
        return True
    # Most lines hold none of the words the two patterns look for: plain substring tests rule
    # them out several times faster than the case-insensitive alternation (same answers).
    lowered = head.lower()
    if not _has_error_hint(lowered):
        return False
    if _LEVEL_IN_TEXT.search(head[:200]):
        return True
    # Case-insensitive matching of non-ASCII text has rules of its own (a dotless i is an i):
    # only ASCII text may take the lower-cased shortcut.
    if head.isascii():
        return bool(_ERROR_WORDS_LOWER.search(lowered))
    return bool(_ERROR_WORDS.search(head))


def _has_error_hint(lowered: str) -> bool:
    """Whether lower-cased text holds any of ``_ERROR_HINTS``.

    A plain loop of ``in``: faster than an alternation regex, and than ``any()`` over a generator.
    """
    for word in _ERROR_HINTS:  # noqa: SIM110
        if word in lowered:
            return True
    return False


def poisson_z(observed: float, expected: float) -> float:
    """Signed root of the Poisson likelihood-ratio statistic (0 when not above expectation)."""
    if observed <= expected or observed <= 0:
        return 0.0
    g = observed * math.log(observed / expected) - (observed - expected)
    return math.sqrt(max(2.0 * g, 0.0))


@dataclass
class TemplateShift:
    service: str
    template: str
    normal_count: int
    incident_count: int
    error: bool
    score: float
    first_seen: float
    z: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.normal_count == 0


def template_shifts(
    logs: list[LogRecord],
    split: float,
    normal_seconds: float,
    incident_seconds: float,
    *,
    examples: int = 2,
    normal_start: float | None = None,
) -> list[TemplateShift]:
    """Templates whose rate rose in the incident window (new ones included), strongest first.

    Records before ``normal_start`` (when given) are ignored. ``score`` is ``log1p(z)``, weighted
    down for non-error templates.
    """
    normal: dict[tuple[str, str], int] = defaultdict(int)
    incident: dict[tuple[str, str], int] = defaultdict(int)
    errors: set[tuple[str, str]] = set()
    first: dict[tuple[str, str], float] = {}
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    lo = normal_start if normal_start is not None else -math.inf
    for rec in logs:
        if rec.timestamp < lo:
            continue
        msg = rec.message
        tpl, line_error = line_template_and_error(rec.level, msg[:TEMPLATE_SCAN_CHARS])
        key = (rec.service, tpl)
        if rec.timestamp < split:
            normal[key] += 1
            continue
        incident[key] += 1
        if key not in first or rec.timestamp < first[key]:
            first[key] = rec.timestamp
        if len(samples[key]) < examples:
            samples[key].append(msg[:500])
        if line_error:
            errors.add(key)
    normal_s = max(normal_seconds, 60.0)
    incident_s = max(incident_seconds, 60.0)
    shifts: list[TemplateShift] = []
    for key, count in incident.items():
        before = normal.get(key, 0)
        expected = (before + PRIOR) * incident_s / normal_s
        if count < MIN_RATE_RATIO * expected:
            continue
        z = poisson_z(count, expected)
        is_err = key in errors
        score = math.log1p(z) * (1.0 if is_err else NON_ERROR_WEIGHT)
        shifts.append(
            TemplateShift(
                service=key[0],
                template=key[1],
                normal_count=before,
                incident_count=count,
                error=is_err,
                score=score,
                first_seen=first[key],
                z=z,
                examples=samples[key],
            )
        )
    shifts.sort(key=lambda s: -s.score)
    return shifts


def condense_logs(bundle: EvidenceBundle) -> list[TemplateShift]:
    """The bundle's template shifts, split at the engine's onset (for the LLM's log tool)."""
    from opsagent.analysis.engine import incident_split

    split = incident_split(bundle)
    return template_shifts(
        bundle.logs,
        split.incident_start,
        normal_seconds=split.normal_end - split.normal_start,
        incident_seconds=split.window_end - split.incident_start,
        normal_start=split.normal_start,
    )

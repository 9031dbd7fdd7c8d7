"""Log lines: the template of a line and whether it reports an error, one templater and one error
classifier for every reader (the engine's event counts and onset, the log digest of reports and
prompts).

A line's template is built in two steps. First a masker (``template_of``) turns the variable parts
of the line's head into ``<*>``; then Drain3's parse tree (``line_templates``) clusters the masked
heads of one service, so statements whose varying parts carry no digit (a name, a status word in a
printed object) still fall into one template. Drain3 sees each distinct masked head once, in time
order, so it costs little however many lines repeat a statement.

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
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter

import numpy as np
import numpy.typing as npt

from opsagent.domain import LogRecord

IntArray = npt.NDArray[np.int64]

_QUOTED = re.compile(r"\"[^\"]{24,}\"|'[^']{24,}'")
# Code locations: a class or file, then "#" or ":" and a line number, optionally in a stack frame's
# parentheses (Logback's %C{1}#%L, Python's/Go's file.py:42, Java's (Foo.java:42)).
_LOCATION = re.compile(
    r"^\(?[A-Za-z_$][\w$.\[\]/-]*(?:#\d+|\.[A-Za-z]{1,5}:\d+)\)?[,:;]?$|^[\w$.]+\([\w$]+\.[A-Za-z]{1,5}:\d+\)$"
)
_DIGIT = re.compile(r"\d")
_has_digit = _DIGIT.search
# Not "null": it is mostly an empty field in a printed payload ("data=null", "PaymentId: null") on
# success paths; a null dereference says "NullPointerException" or "nil pointer". Measured on Nezha
# Train Ticket, whose INFO lines print responses whole: AC@3 0.71 -> 0.75 without it.
_ERROR_WORDS = re.compile(
    r"error|exception|fail|fatal|panic|timeout|timed out|refused|denied|unavailable|oom|traceback|"
    r"nil pointer|status\s*=?\s*5\d\d|code\s*=\s*(?:internal|unavailable|unknown)",
    re.I,
)
_LEVEL_IN_TEXT = re.compile(r"\b(ERROR|FATAL|CRITICAL|SEVERE|PANIC)\b")
# For lower-cased ASCII text ``_ERROR_WORDS`` splits into plain words, found by substring tests, and
# two phrases that need a regular expression, each tried only where its leading word is (ASCII
# lower-casing maps one character to one, and only letters, so the matches are the same). Train
# Ticket's INFO lines print responses whole ("status=1"): the alternation ran over each of them.
_ERROR_WORDS_PLAIN = (
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
)
_ERROR_PHRASES_LOWER = (
    ("status", re.compile(r"status\s*=?\s*5\d\d")),
    ("code", re.compile(r"code\s*=\s*(?:internal|unavailable|unknown)")),
)
# Substrings at least one of which every match of the two patterns above contains (lower case).
_ERROR_HINTS = (*_ERROR_WORDS_PLAIN, "status", "code", "critical", "severe")
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

# A request line: an HTTP method then a path, as a request logger writes the request it served (the
# line's first words, or quoted in a combined log line after its masked address and time); a path
# with an id in it is masked whole (``<*>``).
_REQUEST_LINE = re.compile(r'(?:^|[\s"])(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?:/|<\*>)')


def request_line(template: str) -> bool:
    """Whether a template records a request itself (an access log line) rather than a step of its
    handling: written once per request, its count is the endpoint's traffic."""
    return _REQUEST_LINE.search(template[:80]) is not None


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
        # a word of letters only (most constant tokens) has no digit: no regex call for it
        if t.isalpha() or not _has_digit(t):
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
    return template_of(head), is_error_line(level, head)


def is_error_line(level: str, head: str) -> bool:
    if level.lower() in _ERROR_LEVELS:
        return True
    # Case-insensitive matching of non-ASCII text has rules of its own (a dotless i is an i):
    # only ASCII text may take the lower-cased shortcut.
    if not head.isascii():
        lowered = head.lower()
        if not _has_error_hint(lowered):
            return False
        return bool(_LEVEL_IN_TEXT.search(head[:200])) or bool(_ERROR_WORDS.search(head))
    lowered = head.lower()
    for word in _ERROR_WORDS_PLAIN:
        if word in lowered:
            return True
    for word, phrase in _ERROR_PHRASES_LOWER:
        if word in lowered and phrase.search(lowered):
            return True
    # the level named in the text: its words are in upper case, and the plain words above hold
    # "error", "fatal" and "panic" already
    return ("critical" in lowered or "severe" in lowered) and bool(_LEVEL_IN_TEXT.search(head[:200]))


def _has_error_hint(lowered: str) -> bool:
    """Whether lower-cased text holds any of ``_ERROR_HINTS``.

    A plain loop of ``in``: faster than an alternation regex, and than ``any()`` over a generator.
    """
    for word in _ERROR_HINTS:  # noqa: SIM110
        if word in lowered:
            return True
    return False


# Drain3's parse tree: the similarity a masked head needs to join a template (share of equal
# tokens, among heads of the same length and first tokens), and the tree's depth. The masker has
# already replaced ids and numbers, so Drain3 only merges heads that differ in words; a high bar
# keeps a statement's failure and success lines (which differ in a word or two) apart.
DRAIN_SIMILARITY = 0.7
DRAIN_DEPTH = 4


def line_templates(*parts: Sequence[LogRecord]) -> list[tuple[str, bool]]:
    """Each record's (template, error flag), of ``parts`` taken as one list in order: the masked
    head clustered per service by Drain3.

    Drain3 sees each distinct (service, masked head) once, in order of first appearance in the
    whole list; a template depends on the heads that came before it. The engine templates one
    case's lines twice (the event onset the window's lines, the event counts the reference's and
    the window's): each part's masking (``_masked``) is kept for the next call, only the clustering
    runs again.
    """
    from drain3.drain import Drain, LogCluster

    miners: dict[str, Drain] = {}
    clusters: list[LogCluster] = []
    # each distinct pair's slot among ``clusters``, in order of first appearance over the parts
    slots: dict[tuple[str, str], int] = {}
    per_record: list[IntArray] = []
    errors: list[bool] = []
    for part in parts:
        masked = _masked(part)
        local = np.empty(len(masked.pairs), dtype=np.int64)
        for i, pair in enumerate(masked.pairs):
            slot = slots.get(pair)
            if slot is None:
                service, head = pair
                miner = miners.get(service)
                if miner is None:
                    miner = miners[service] = Drain(
                        sim_th=DRAIN_SIMILARITY, depth=DRAIN_DEPTH, param_str="<*>"
                    )
                slot = slots[pair] = len(clusters)
                clusters.append(miner.add_log_message(head)[0])
            local[i] = slot
        per_record.append(local[masked.index])
        errors.extend(masked.errors)
    # templates as the clusters ended: a cluster generalises as heads join it
    final = [cluster.get_template()[:MAX_TEMPLATE_CHARS] for cluster in clusters]
    index: list[int] = np.concatenate(per_record).tolist() if per_record else []
    return list(zip(map(final.__getitem__, index), errors, strict=True))


@dataclass(frozen=True)
class _Masked:
    """One list's masking: its records (to know it again), its distinct (service, masked head)
    pairs in order of first appearance, each record's number among them, and its error flags."""

    records: tuple[LogRecord, ...]
    pairs: list[tuple[str, str]]
    index: IntArray
    errors: list[bool]


# The last lists masked, most recent last: the same records in the same order are masked once.
_recent: tuple[_Masked, ...] = ()
_RECENT_LISTS = 2


def _masked(records: Sequence[LogRecord]) -> _Masked:
    global _recent
    held = tuple(records)
    for known in _recent:
        # the very records (identity first: a tuple comparison tests each pair with ``is`` before
        # ``==``), so a list changed in place since is masked again
        if len(known.records) == len(held) and known.records == held:
            return known
    heads = [line_template_and_error(r.level, r.message[:TEMPLATE_SCAN_CHARS]) for r in held]
    codes: dict[tuple[str, str], int] = {}
    index = np.fromiter(
        (
            codes.setdefault(pair, len(codes))
            for pair in zip(map(_service, held), map(itemgetter(0), heads), strict=True)
        ),
        dtype=np.int64,
        count=len(held),
    )
    masked = _Masked(held, list(codes), index, list(map(itemgetter(1), heads)))
    _recent = (*_recent[-(_RECENT_LISTS - 1) :], masked)
    return masked


_service = attrgetter("service")

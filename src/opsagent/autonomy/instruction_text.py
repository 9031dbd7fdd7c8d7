"""What reads as instructions to an agent: the phrasings, and reading one text or many against them.

The patterns are phrasings addressed to a model or an operator bot, not words a service logs about
itself: "restart" alone is an ordinary log word, "restart all deployments" is an order. What is done
with such text (flagged, never obeyed) is ``autonomy.untrusted``'s job.
"""

from __future__ import annotations

import re

import numpy as np
from ahocorasick_rs import BytesAhoCorasick

_VERBS = r"(?:restart|delete|drop|scale|drain|cordon|roll ?back|kill|terminate|disable|approve|run|execute|shut ?down)"
# Each pattern comes with the lower-case words one of which any match must contain. Logs are scanned
# line by line (tens of thousands in a busy incident), and a substring test is a hundred times cheaper
# than a regular expression, so the expression runs only on the few lines that could match it.
_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (
        "asks to ignore earlier instructions",
        ("ignore", "disregard", "forget", "override"),
        re.compile(
            r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|all|your|system)\b"
            r"[^.\n]{0,20}\b(?:instructions?|prompts?|rules?|polic(?:y|ies)|guidelines?)",
            re.IGNORECASE,
        ),
    ),
    (
        "addresses an AI agent",
        ("you are now", "as a", "dear", "llm", "assistant", "agent", "ai,", "ai:", "ai ", "ai\t", "ai\n"),
        re.compile(
            r"\b(?:you are now|as an? (?:ai|llm|language model|assistant|agent)|dear (?:ai|assistant|agent)|"
            r"(?:ai|llm|assistant|agent|opsagent)\s*[,:]\s*(?:please\s+)?(?:you must|you should|now|immediately)?\s*"
            + _VERBS
            + r")",
            re.IGNORECASE,
        ),
    ),
    (
        "carries prompt markup",
        ("system", "assistant>", "user>", "tool>", "instruction", "[inst]", "[/inst]", "<|im_start|>"),
        re.compile(
            r"(?:</?(?:system|assistant|user|tool|instructions?)>|\[/?INST\]|<\|im_start\|>|^\s*#+\s*(?:system|new instructions?)\b)",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        "orders a fleet-wide change",
        ("all", "every", "each", "whole", "entire"),
        re.compile(
            r"\b" + _VERBS + r"\s+(?:all|every|each|the whole|the entire)\s+(?:of the\s+)?"
            r"(?:deployments?|pods?|services?|nodes?|namespaces?|clusters?|databases?|fleet|actions?|requests?)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "asks for a new instruction set or to skip approval",
        ("new instruction", "system prompt", "without", "bypass", "skip"),
        re.compile(
            r"\b(?:new instructions?|system prompt|without (?:asking for )?approval|bypass (?:the )?(?:policy|approval|safety)|"
            r"skip (?:the )?(?:approval|policy|verification))\b",
            re.IGNORECASE,
        ),
    ),
)


# Some words are common in ordinary logs ("all" in "call", "ai," in "shanghai,"), and a pattern's
# expression then runs over long payloads, a character at a time. For ASCII text a match of these
# patterns implies a match of a cheaper expression on the lower-cased text (each a part every match
# must contain, case-sensitive and starting with a literal or a short class, which the regular
# expression engine skips to): the full pattern runs only where that one matched. On non-ASCII text
# case-insensitive matching has rules of its own (the Kelvin sign is a k), so the full pattern runs.
# the order's tail: after the address's [,:] comes an optional politeness, then a verb
_ORDER_TAIL = re.compile(r"[,:]\s*(?:please\s+)?(?:you must|you should|now|immediately)?\s*" + _VERBS)
_ASCII_GATES: dict[str, tuple[re.Pattern[str], ...]] = {
    "addresses an AI agent": (
        re.compile(r"you are now"),
        re.compile(r"as an? (?:ai|llm|language model|assistant|agent)"),
        re.compile(r"dear (?:ai|assistant|agent)"),
        _ORDER_TAIL,
    ),
    "orders a fleet-wide change": (re.compile(_VERBS + r"\s+(?:all|every|each|the whole|the entire)\s"),),
}
# A pattern's words in groups that share a part (each word of a group holds its group's key): where
# the key is missing, none of its words is there, one search instead of several. Most lines hold
# none of the words, and searching them for every word was most of a scan. A group without words
# is its key alone.
_WORD_GROUPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "addresses an AI agent": (
        ("you are now", ()),
        ("as a", ()),
        ("dear", ()),
        ("llm", ()),
        ("assistant", ()),
        ("agent", ()),
        ("ai", ("ai,", "ai:", "ai ", "ai\t", "ai\n")),
    ),
    "carries prompt markup": (
        ("system", ()),
        ("instruction", ()),
        (">", ("assistant>", "user>", "tool>", "<|im_start|>")),
        ("inst]", ("[inst]", "[/inst]")),
    ),
}
_GATED = tuple(
    (
        why,
        _WORD_GROUPS.get(why, tuple((needle, ()) for needle in needles)),
        pattern,
        _ASCII_GATES.get(why, ()),
    )
    for why, needles, pattern in _PATTERNS
)


# The gate of an order's tail starts at every comma or colon of a line ("ai," is in "shanghai,"),
# which in a line of JSON is many: a match holds a verb (``_VERB_SPELLINGS``), and most lines none,
# far cheaper to look for.
# every spelling of a verb of ``_VERBS`` ("roll ?back": both)
_VERB_SPELLINGS = (
    "restart",
    "delete",
    "drop",
    "scale",
    "drain",
    "cordon",
    "rollback",
    "roll back",
    "kill",
    "terminate",
    "disable",
    "approve",
    "run",
    "execute",
    "shutdown",
    "shut down",
)
_VERB_WORDS = tuple((word, ()) for word in _VERB_SPELLINGS)
# Keyed by the gate itself, not its place in a tuple: a reordered gate must not get another's words
# (a gate given words it need not contain would let its matches pass unflagged).
_GATE_WORDS = {_ORDER_TAIL: _VERB_WORDS}


def _passes_a_gate(lowered: str, gates: tuple[re.Pattern[str], ...]) -> bool:
    for gate in gates:
        words = _GATE_WORDS.get(gate)
        if words is not None and not _holds_a_word(lowered, words):
            continue
        if gate.search(lowered):
            return True
    return False


def _holds_a_word(lowered: str, groups: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
    """Whether ``lowered`` holds any word of ``groups`` (``_WORD_GROUPS``)."""
    for key, words in groups:
        if key in lowered:
            if not words:
                return True
            for word in words:
                if word in lowered:
                    return True
    return False


def reading(text: str) -> str | None:
    """Why ``text`` reads as instructions to an agent, or None."""
    lowered = text.lower()
    ascii_text = text.isascii()
    for why, groups, pattern, gates in _GATED:
        if not _holds_a_word(lowered, groups):
            continue
        if gates and ascii_text and not _passes_a_gate(lowered, gates):
            continue
        if pattern.search(text):
            return why
    return None


# --- many texts at once ------------------------------------------------------------------------
# An incident's log lines are read together. For ASCII text every match of a pattern contains, lower
# case, one of the pattern's words below (for an order, one spelling of its verb: the gates' argument);
# one pass of a multi-word automaton over all the lines' lower-cased bytes (native code, ~0.5 GB/s)
# finds the few lines that hold one, and only those are read pattern by pattern, where a substring
# test per word and line would read each line ~25 times. Other lines are read one by one (``reading``).
_MUST_HOLD: dict[str, tuple[str, ...]] = {
    "asks to ignore earlier instructions": ("ignore", "disregard", "forget", "override"),
    # "you are now", "as a(n) <agent>", "dear <agent>", or an address followed by a verb
    "addresses an AI agent": ("you are now", "as a", "dear", *_VERB_SPELLINGS),
    "carries prompt markup": (
        "system",
        "instruction",
        "assistant>",
        "user>",
        "tool>",
        "[inst]",
        "[/inst]",
        "<|im_start|>",
    ),
    "orders a fleet-wide change": _VERB_SPELLINGS,
    # "new instruction(s)" and "system prompt" hold "instruction" and "system"
    "asks for a new instruction set or to skip approval": (
        "instruction",
        "system",
        "without",
        "bypass",
        "skip",
    ),
}
_WORDS = sorted({word for words in _MUST_HOLD.values() for word in words})
# for each word, the patterns (bits, in ``_GATED`` order) a line holding it may match
_ROUTE = [
    sum(1 << bit for bit, (why, *_rest) in enumerate(_GATED) if word in _MUST_HOLD[why]) for word in _WORDS
]
_AUTOMATON = BytesAhoCorasick([word.encode("ascii") for word in _WORDS])


def readings(texts: list[str]) -> list[str | None]:
    """``reading`` of each text."""
    out: list[str | None] = [None] * len(texts)
    plain: list[int] = []
    for i, text in enumerate(texts):
        if text.isascii():
            plain.append(i)
        else:
            out[i] = reading(text)
    if not plain:
        return out
    lowered = [texts[i].lower() for i in plain]
    # each line's offset in the joined text; no word holds a newline, so no match spans two lines
    starts = np.cumsum([0, *(len(line) + 1 for line in lowered)])
    # overlapping: every occurrence of every word, so one word cannot hide another
    hits = _AUTOMATON.find_matches_as_indexes("\n".join(lowered).encode("ascii"), overlapping=True)
    if not hits:
        return out
    words, at, _ = zip(*hits, strict=True)
    lines = (np.searchsorted(starts, np.array(at), side="right") - 1).tolist()
    routes: dict[int, int] = {}
    for line, word in zip(lines, words, strict=True):
        routes[line] = routes.get(line, 0) | _ROUTE[word]
    for line, route in routes.items():
        out[plain[line]] = _reading_routed(texts[plain[line]], lowered[line], route)
    return out


def _reading_routed(text: str, lowered: str, route: int) -> str | None:
    """``reading`` of an ASCII text, trying only the patterns in ``route`` (the others cannot match)."""
    for bit, (why, groups, pattern, gates) in enumerate(_GATED):
        if not route >> bit & 1 or not _holds_a_word(lowered, groups):
            continue
        if gates and not _passes_a_gate(lowered, gates):
            continue
        if pattern.search(text):
            return why
    return None

"""Events and their shifts: the building blocks the event comparisons share.

An event is something a service does that can be counted per period: a log statement, a span
operation, a call from another service, a failed span, an error's origin, a call edge that went
silent, a handler step skipped (``EventKind``). ``PatternShift`` is one event whose share of the
traffic changed between the normal period and the incident; ``binomial_z`` scores that change and
``size_factor`` estimates the exposure it is measured against. ``patterns.py`` (logs and spans),
``calls.py`` (call edges) and ``handlers.py`` (handler steps) all produce ``PatternShift``s.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from opsagent.analysis.logs import request_line

EventKind = Literal["log", "operation", "call", "error", "origin", "edge", "handler"]
# Events whose fall below the traffic they ride on is a code path that stopped (``relative_ratio``):
# log statements and span operations (against their host span operation), call edges (against
# their caller's inbound calls), a handler's steps (against the handler's own requests).
STOPPED_KINDS: tuple[EventKind, ...] = ("log", "operation", "edge", "handler")

# Add-half smoothing of both counts: an event never seen before is not infinitely surprising, and a
# period with one occurrence is not "infinitely more" than one with none.
PRIOR = 0.5
# Events with at least this many occurrences in both periods together estimate the size factor: below
# it a ratio is mostly Poisson noise.
SIZE_FACTOR_MIN_SUPPORT = 10
# Fewer well-supported events than this and the size factor falls back to the ratio of the totals.
SIZE_FACTOR_MIN_EVENTS = 5
# An event must at least double (or halve) its share of the traffic to count: smaller moves are what
# load mix alone does to any event.
MIN_RATE_RATIO = 2.0
# |z| below this is noise (3 sd, the control-chart limit used for metric onsets).
MIN_Z = 3.0
# A fall of an event counts this much of a rise: a victim of a broken caller loses events too, but a
# code path that stops (an exception skipping the rest of a handler) shows only as falls. Measured on
# the Nezha development split (AC@1/AC@3, Online Boutique | Train Ticket): 0.5: 0.75/0.83 | 0.39/0.75;
# 0.75: 0.75/0.83 | 0.43/0.82; 1.0: 0.71/0.83 | 0.54/0.82 (and Train Ticket's fault typing among
# rank-1 cases 0.82 / 0.75 / 0.67). Three quarters: falls nearly as telling, without the cost on OB.
DECREASE_WEIGHT = 0.75
# A log template or span that does not say "error" is context rather than failure: weighted down
# as in ``logs.NON_ERROR_WEIGHT``.
NON_ERROR_WEIGHT = 0.5
# Span operation names that are an error handler (the framework's error page or a catch-all)
# are failures even when the tracer records no status.
_ERROR_OPERATION_WORDS = ("error", "exception", "fail")


@dataclass
class PatternShift:
    """One event whose share of the traffic changed between the normal period and the incident."""

    service: str
    kind: EventKind
    key: str
    normal_count: int
    incident_count: int
    expected: float
    z: float  # signed: negative for a fall
    score: float
    error: bool
    first_seen: float | None = None
    examples: list[str] = field(default_factory=list)
    # share of the incident occurrences that echo a failure below them in the trace (error logs)
    echo_share: float = 0.0
    # the event's rate ratio over its own service's typical one (``_service_ratios``): far below 1
    # when this code path fell while the rest of the service's traffic did not
    relative_ratio: float = 1.0
    # handler events (``handlers.truncated_handlers``): the handler's requests before and after
    # the change, the denominators of ``normal_count`` and ``incident_count``
    requests: tuple[int, int] | None = None
    # origin events (``event_counts.origins``): the other services the failing requests called,
    # none of which failed or changed on their path
    answered_by: frozenset[str] = frozenset()
    # edge events (``calls.stopped_calls``): the callees the service stopped calling
    silenced: frozenset[str] = frozenset()

    @property
    def is_new(self) -> bool:
        return self.normal_count == 0

    @property
    def is_gone(self) -> bool:
        return self.incident_count == 0

    @property
    def code_path_stopped(self) -> bool:
        """``code_path_stopped`` of this event."""
        return code_path_stopped(self.kind, self.key, self.z, self.relative_ratio)

    @property
    def digest(self) -> str:
        """A short stable id of the event (same service, kind and key: same digest, in every run)."""
        return hashlib.sha1(f"{self.service}\x00{self.kind}\x00{self.key}".encode()).hexdigest()[:10]


def binomial_z(n1: float, n0: float, p: float) -> float:
    """Signed root of the likelihood-ratio statistic of ``n1`` out of ``n0 + n1`` against share ``p``."""
    n = n0 + n1
    if n <= 0 or not 0.0 < p < 1.0:
        return 0.0
    q = n1 / n
    g = 0.0
    if n1 > 0:
        g += n1 * math.log(q / p)
    if n0 > 0:
        g += n0 * math.log((1.0 - q) / (1.0 - p))
    z = math.sqrt(max(2.0 * g, 0.0))
    return z if q >= p else -z


def size_factor(pairs: Iterable[tuple[int, int]]) -> float:
    """Incident-to-normal exposure: the median count ratio over well-supported events."""
    ratios: list[float] = []
    total0 = total1 = 0
    for n0, n1 in pairs:
        total0 += n0
        total1 += n1
        if n0 + n1 >= SIZE_FACTOR_MIN_SUPPORT:
            ratios.append((n1 + PRIOR) / (n0 + PRIOR))
    if len(ratios) >= SIZE_FACTOR_MIN_EVENTS:
        ratios.sort()
        mid = len(ratios) // 2
        return ratios[mid] if len(ratios) % 2 else math.sqrt(ratios[mid - 1] * ratios[mid])
    return (total1 + PRIOR) / (total0 + PRIOR)


@functools.lru_cache(maxsize=8192)
def error_operation(operation: str) -> bool:
    """Whether a span operation is an error handler (its name says error, exception or fail)."""
    # cached: a system has a few hundred operation names, called once per span (hundreds of thousands)
    lowered = operation.lower()
    return any(w in lowered for w in _ERROR_OPERATION_WORDS)


def code_path_stopped(kind: EventKind, key: str, z: float, relative_ratio: float) -> bool:
    """A fall of a statement, operation or call edge far below the traffic it rides on: its code
    path stopped while requests kept coming (``stopped_code_path``), not lost traffic. A request
    line (``logs.request_line``) that stopped is requests of that kind that stopped coming (callers
    that fail before calling): its code path cannot have stopped while its requests kept coming."""
    return (
        kind in STOPPED_KINDS
        and z < 0
        and stopped_code_path(relative_ratio)
        and not (kind == "log" and request_line(key))
    )


def stopped_code_path(relative_ratio: float) -> bool:
    """Whether a log statement fell so far below the traffic it rides on that its code path stopped.

    An injected exception or a changed return value takes the code past a statement without
    writing an error line; its requests keep arriving. A service that merely slows down or loses
    requests sees its statements fall with its traffic, so their relative ratio stays near 1.
    The bar is the one every event must pass (``MIN_RATE_RATIO``).
    """
    return relative_ratio <= 1.0 / MIN_RATE_RATIO

"""Event patterns from logs and spans: which per-service events changed their share of the traffic.

A code-level fault (a wrong return value, an injected exception) rarely moves a metric: it changes
*what the faulty service does*. It writes a log statement it never wrote before (or stops writing
one), takes another code path (other operations, other calls), answers through an error handler.
So, per service, the engine counts events in the normal period and in the incident:

* ``log``: a log template (``logs.template_of``) written by the service;
* ``operation``: a span of the service with that operation name;
* ``call``: a span of the service whose parent span belongs to another service, keyed by the caller
  (the edge caller → service, operation): which of its callers' calls changed;
* ``error``: a span of the service marked failed, by operation (where the tracer records status).

How much an event's count changed is a conditional binomial test: given ``n0 + n1`` occurrences,
under "nothing changed" ``n1`` is Binomial(n0 + n1, p), ``p`` being the incident's share of the
exposure. The exposure is not wall-clock time: recordings have gaps (a collector that kept only some
minutes) and load moves. It is the median ratio of incident to normal counts over the well-supported
events of the same source (the "median of ratios" size factor of count statistics): the typical
event's change, which a minority of events changing cannot move. The signed root of the likelihood
ratio reads like a z-score, so a frequent template's small wobble stays small (its ``N`` is large
but its share barely moved) while a template that appears twenty times from nothing scores high.

Decreases count as well as increases (a skipped code path is as telling as a new one), but less: a
service also sees fewer events when a caller upstream broke, which makes it a victim. The two are
told apart by the traffic a log statement rides on (the span operation it was written in, else its
service's typical events): a statement that fell at least 2x below that traffic is a code path
that stopped while its requests kept coming (``stopped_code_path``), and weighs as an error event.
Errors that fall do not count at all: fewer errors than before is an earlier failure ending. Nor
do non-error events that rise (``_fault_evidence``): more of an ordinary statement, operation or
call is what a change in the request mix looks like.

Where the incident has a reference period (known to be normal), its events join the normal side,
and error statements are also compared with the reference alone (``_new_against_reference``): a
failure already going on before the split has not changed against the minutes before it.

Where log lines carry the trace and span they were written in, an error line is placed in its call
tree (``_origins``). Callers echo a failure: the service that raised it logs an error, and so does
every caller whose error handler catches it. An error line in a span none of whose descendant spans
in other services failed or logged an error is where the failure *originated*; one below which
another service failed is an echo. A wrong return value raises nothing where it is produced: the
caller that chokes on it logs the error. So from an originating span the walk continues down the
trace to the deepest callee service that has changed events of its own (its counted events moved,
``_shifts``): that callee is blamed, as event kind ``origin``, and the error line above it is an echo.
Echoed error templates are weighted down (``ECHO_WEIGHT``), so a caller's error handler no longer
outranks the service it is reporting on.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from typing import Literal, TypeVar

import numpy as np

from opsagent.analysis.logs import TEMPLATE_SCAN_CHARS, line_template_and_error
from opsagent.domain import LogRecord, Span

EventKind = Literal["log", "operation", "call", "error", "origin", "edge", "handler"]
# Events whose fall below the traffic they ride on is a code path that stopped (``relative_ratio``):
# log statements and span operations (against their host span operation), call edges (against
# their caller's inbound calls), a handler's steps (against the handler's own requests).
STOPPED_KINDS: tuple[EventKind, ...] = ("log", "operation", "edge", "handler")
_R = TypeVar("_R", LogRecord, Span)

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
# An error template most of whose incident lines are echoes (written in a span below which another
# service failed or changed) counts this much: it is evidence of propagation, not of a fault in the
# service that writes it. Half, as for the other secondary evidence (decreases, non-error events).
ECHO_WEIGHT = 0.5
# "Most": the share of a template's incident lines that must be echoes for it to count as one.
ECHO_SHARE = 0.5


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

    @property
    def is_new(self) -> bool:
        return self.normal_count == 0

    @property
    def is_gone(self) -> bool:
        return self.incident_count == 0

    @property
    def code_path_stopped(self) -> bool:
        """A fall of a statement, operation or call edge far below the traffic it rides on: its code
        path stopped while requests kept coming (``stopped_code_path``), not lost traffic."""
        return self.kind in STOPPED_KINDS and self.z < 0 and stopped_code_path(self.relative_ratio)

    @property
    def digest(self) -> str:
        """A short stable id of the event (same service, kind and key: same digest, in every run)."""
        return hashlib.sha1(f"{self.service}\x00{self.kind}\x00{self.key}".encode()).hexdigest()[:10]


@dataclass
class _Counts:
    normal: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))
    incident: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))
    first: dict[tuple[str, EventKind, str], float] = field(default_factory=dict)
    errors: set[tuple[str, EventKind, str]] = field(default_factory=set)
    examples: dict[tuple[str, EventKind, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    echoes: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))
    # the traffic an event rides on, as (service, span operation): for a log event the span its
    # lines were written in (where lines carry one), for a span operation its parent span's in the
    # same service
    hosts: dict[tuple[str, EventKind, str], dict[tuple[str, str], int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    # the reference period's share of ``normal``: its counts on their own
    reference: dict[tuple[str, EventKind, str], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: tuple[str, EventKind, str], t: float, normal: bool, error: bool, example: str) -> None:
        if error:
            self.errors.add(key)
        if normal:
            self.normal[key] += 1
            return
        self.incident[key] += 1
        if key not in self.first or t < self.first[key]:
            self.first[key] = t
        if example and len(self.examples[key]) < 2:
            self.examples[key].append(example[:300])


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


@dataclass(frozen=True)
class _ErrorLine:
    """An error log line written inside a known span."""

    t: float
    service: str
    span_id: str
    template: str
    normal: bool


@dataclass(frozen=True)
class _Periods:
    """Which records count as normal and which as the incident.

    In-window records before ``split`` are normal, those from it on are the incident. Records of a
    reference period (known to be normal) are normal as well, wherever they fall outside the
    incident part: a reference that overlaps the incident is not normal for it. One that falls in
    the window's normal part (a fault-free minute recorded among the minutes before the alert) is
    still normal; a record the window also holds is counted once (``_held``). The reference *adds*
    to the in-window normal period rather than replacing it: alone, one fault-free minute recorded
    apart differs from any incident's minutes in its request mix, and that mix then reads as change
    (measured on Nezha Train Ticket, pattern channel alone, AC@1/AC@3: in-window normal 0.32/0.54,
    reference only 0.18/0.32, both 0.39/0.71).
    """

    lo: float
    split: float
    hi: float

    def side(self, t: float, reference: bool) -> bool | None:
        """True: normal, False: incident, None: not counted."""
        if reference:
            return True if t < self.split or t > self.hi else None
        if t < self.lo or t > self.hi:
            return None
        return t < self.split

    def in_window_normal(self, t: float) -> bool:
        return self.lo <= t < self.split


def _held(
    reference: list[_R],
    window: list[_R],
    periods: _Periods,
    identity: Callable[[_R], Hashable],
    time: Callable[[_R], float],
) -> set[Hashable]:
    """Identities of the reference records that the window holds as well (where the two overlap).

    Only the window's normal part can hold them, and only its records whose identity a reference
    record shares are returned: callers test reference records against the set.
    """
    if not any(_in_window_normal(periods, list(map(time, reference)))):
        return set()
    candidates = {identity(r) for r in reference}
    in_normal = compress(window, _in_window_normal(periods, list(map(time, window))))
    return {key for key in map(identity, in_normal) if key in candidates}


def _in_window_normal(periods: _Periods, times: list[float]) -> list[bool]:
    """``periods.in_window_normal`` of each time, computed on an array."""
    t = np.asarray(times, dtype=np.float64)
    inside: list[bool] = ((t >= periods.lo) & (t < periods.split)).tolist()
    return inside


def _log_identity(record: LogRecord) -> Hashable:
    return (record.timestamp, record.service, record.message)


def _span_identity(span: Span) -> Hashable:
    return span.span_id


def _count_logs(
    logs: list[LogRecord], periods: _Periods, reference: list[LogRecord], operations: dict[str, str]
) -> tuple[_Counts, list[_ErrorLine]]:
    counts = _Counts()
    held = _held(reference, logs, periods, _log_identity, attrgetter("timestamp"))
    linked: list[_ErrorLine] = []
    for is_ref, records in ((True, reference), (False, logs)):
        for rec in records:
            normal = periods.side(rec.timestamp, is_ref)
            if normal is None:
                continue
            msg = rec.message
            tpl, line_error = line_template_and_error(rec.level, msg[:TEMPLATE_SCAN_CHARS])
            key: tuple[str, EventKind, str] = (rec.service, "log", tpl)
            if is_ref:
                counts.reference[key] += 1
                if held and _log_identity(rec) in held:
                    continue  # the window's own list counts it as normal
            # trace-linked error lines: their place in the call tree says whether they echo a failure
            if line_error and rec.span_id:
                linked.append(_ErrorLine(rec.timestamp, rec.service, rec.span_id, tpl, normal))
            counts.add(key, rec.timestamp, normal, line_error, msg)
            host = operations.get(rec.span_id) if rec.span_id else None
            if host is not None:
                counts.hosts[key][(rec.service, host)] += 1
    return counts, linked


def _origins(counts: _Counts, linked: list[_ErrorLine], spans: list[Span], changed: set[str]) -> None:
    """Count where each trace-linked error line originated, and which lines echo one; in ``counts``.

    A line is an echo when a descendant span in another service failed (error status or an
    error-handler operation) or wrote an error line itself, or when a descendant service has changed
    events of its own (``changed``): the deepest such service is then the origin. Otherwise the
    line's own service is. Origins are counted as events of kind ``origin`` of the blamed service,
    keyed by the error template they surface as (and where), so the normal period is counted alike.
    """
    if not linked or not spans:
        return
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        if s.parent_id:
            children[s.parent_id].append(s)
    failed = {s.span_id for s in spans if s.error or error_operation(s.operation)}
    failed |= {line.span_id for line in linked}
    verdicts: dict[str, tuple[bool, str | None]] = {}
    for line in linked:
        verdict = verdicts.get(line.span_id)
        if verdict is None:
            verdict = verdicts[line.span_id] = _walk(
                line.span_id, line.service, by_id, children, failed, changed
            )
        echo, deepest = verdict
        log_key: tuple[str, EventKind, str] = (line.service, "log", line.template)
        if not line.normal and (echo or deepest is not None):
            counts.echoes[log_key] += 1
        if echo:
            continue
        where = line.service if deepest is None else deepest
        via = "" if deepest is None else f" (surfacing in {line.service})"
        counts.add((where, "origin", f"{line.template}{via}"), line.t, line.normal, True, "")


def _walk(
    span_id: str,
    service: str,
    by_id: dict[str, Span],
    children: dict[str, list[Span]],
    failed: set[str],
    changed: set[str],
) -> tuple[bool, str | None]:
    """(whether a descendant in another service failed, the deepest changed descendant service)."""
    if span_id not in by_id:
        return False, None
    best: tuple[int, str] | None = None
    stack: list[tuple[str, int, str]] = [(span_id, 0, service)]
    seen = {span_id}
    while stack:
        sid, depth, owner = stack.pop()
        for child in children.get(sid, ()):
            if child.span_id in seen:
                continue
            seen.add(child.span_id)
            hop = depth + (child.service != owner)
            if child.service != service:
                if child.span_id in failed:
                    return True, None
                if child.service in changed and (best is None or hop > best[0]):
                    best = (hop, child.service)
            stack.append((child.span_id, hop, child.service))
    return False, best[1] if best else None


def _count_spans(spans: list[Span], periods: _Periods, reference: list[Span]) -> _Counts:
    counts = _Counts()
    held = _held(reference, spans, periods, _span_identity, attrgetter("start"))
    reference = [s for s in reference if not held or s.span_id not in held]
    # each span's (service, operation), for its children's caller and host operation
    owner = {s.span_id: (s.service, s.operation) for s in spans}
    owner.update((s.span_id, (s.service, s.operation)) for s in reference)
    normal: list[Span] = []
    incident: list[Span] = []
    for is_ref, records in ((True, reference), (False, spans)):
        in_normal, in_incident = _sides(periods, [s.start for s in records], is_ref)
        normal.extend(compress(records, in_normal))
        incident.extend(compress(records, in_incident))
    _tally_spans(counts, normal, owner, normal=True)
    _tally_spans(counts, incident, owner, normal=False)
    return counts


def _sides(periods: _Periods, times: list[float], reference: bool) -> tuple[list[bool], list[bool]]:
    """``periods.side`` of each time as two masks, (normal, incident), computed on an array."""
    t = np.asarray(times, dtype=np.float64)
    if reference:
        normal = (t < periods.split) | (t > periods.hi)
        return normal.tolist(), [False] * len(times)
    # comparisons with NaN are false in numpy as in Python: a NaN time counts, in the incident
    counted = ~((t < periods.lo) | (t > periods.hi))
    normal = counted & (t < periods.split)
    return normal.tolist(), (counted & ~normal).tolist()


# What a span's events depend on: (service, operation, parent span's service or None, error,
# parent span's operation or None).
_SpanKind = tuple[str, str, str | None, bool, str | None]


def _span_kind(span: Span, owner: dict[str, tuple[str, str]]) -> _SpanKind:
    parent = owner.get(span.parent_id) if span.parent_id else None
    if parent is None:
        return (span.service, span.operation, None, span.error, None)
    return (span.service, span.operation, parent[0], span.error, parent[1])


def _tally_spans(
    counts: _Counts, members: list[Span], owner: dict[str, tuple[str, str]], normal: bool
) -> None:
    """Count the events of one period's spans into ``counts``, as ``_Counts.add`` would one by one.

    A window holds up to ~100k spans but a few hundred kinds of span (``_SpanKind``): the kinds
    are counted, and each kind's events (``_span_events``) added once with its count. Span events
    keep no examples, so ``add`` would fill only counts, error flags and earliest incident times.
    """
    kinds: list[_SpanKind] = [_span_kind(s, owner) for s in members]
    tally = counts.normal if normal else counts.incident
    for kind, n in Counter(kinds).items():
        for key, error in _span_events(kind):
            tally[key] += n
            if error:
                counts.errors.add(key)
        service, operation, caller, _, host = kind
        if host is not None and caller == service:
            # a step of the service's own handler; under a caller's span the operation rides on
            # calls it does not control (their stop is the caller's code path)
            counts.hosts[(service, "operation", operation)][(service, host)] += n
    if not normal:
        _first_times(counts.first, kinds, [s.start for s in members])


def _span_events(kind: _SpanKind) -> list[tuple[tuple[str, EventKind, str], bool]]:
    """The events (with their error flags) of a span of this kind: its operation; its call, when
    its parent span is in another service; its failure, when it failed."""
    service, operation, caller, failed, _ = kind
    err_op = error_operation(operation)
    events: list[tuple[tuple[str, EventKind, str], bool]] = [((service, "operation", operation), err_op)]
    if caller is not None and caller != service:
        events.append(((service, "call", f"{caller} -> {operation}"), err_op))
    if failed:
        events.append(((service, "error", operation), True))
    return events


def _first_times(
    first: dict[tuple[str, EventKind, str], float], kinds: list[_SpanKind], times: list[float]
) -> None:
    """Each event's earliest time into ``first``, as the running minimum of ``_Counts.add`` keeps it.

    That is the smallest time and, of equal ones (0.0 and -0.0), the first in the list: each kind's
    first span in a stable time order, whose events are then set in that order. A NaN neither
    replaces nor is replaced in a running minimum, so with one the running minimum itself runs.
    """
    stamps = np.asarray(times, dtype=np.float64)
    if np.isnan(stamps).any():
        for kind, t in zip(kinds, times, strict=True):
            for key, _ in _span_events(kind):
                if key not in first or t < first[key]:
                    first[key] = t
        return
    order = np.argsort(stamps, kind="stable").tolist()
    # a dict keeps the last value written for a key: written in reverse, the first in time order
    earliest = dict(zip([kinds[i] for i in reversed(order)], reversed(order), strict=True))
    for kind, i in sorted(earliest.items(), key=lambda item: (times[item[1]], item[1])):
        for key, _ in _span_events(kind):
            if key not in first or times[i] < first[key]:
                first[key] = times[i]


def _size(counts: _Counts) -> float:
    keys = set(counts.normal) | set(counts.incident)
    return size_factor((counts.normal.get(k, 0), counts.incident.get(k, 0)) for k in keys)


def _service_ratios(counts: _Counts, keys: set[tuple[str, EventKind, str]], r: float) -> dict[str, float]:
    """Each service's typical incident-to-normal ratio over ``r`` (its own size factor relative to all)."""
    pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key in keys:
        if key[1] != "origin":
            pairs[key[0]].append((counts.normal.get(key, 0), counts.incident.get(key, 0)))
    return {svc: size_factor(ps) / r for svc, ps in pairs.items()}


def stopped_code_path(relative_ratio: float) -> bool:
    """Whether a log statement fell so far below the traffic it rides on that its code path stopped.

    An injected exception or a changed return value takes the code past a statement without
    writing an error line; its requests keep arriving. A service that merely slows down or loses
    requests sees its statements fall with its traffic, so their relative ratio stays near 1.
    The bar is the one every event must pass (``MIN_RATE_RATIO``).
    """
    return relative_ratio <= 1.0 / MIN_RATE_RATIO


def _traffic_ratio(
    counts: _Counts,
    key: tuple[str, EventKind, str],
    own: dict[str, float],
    operation_ratios: dict[tuple[str, str], float],
) -> float | None:
    """The rate ratio of the traffic an event rides on: its host span operation's, else its service's.

    A log line written inside a span rides on that span's operation: if the operation kept its
    rate while the line fell, the code path stopped; if the operation fell as far, the requests
    stopped coming (a caller broke). Without trace links the service's typical ratio stands in.
    Measured on Nezha Train Ticket (AC@1/AC@3): against the service's ratio 0.71/0.86, against the
    host operation's 0.75/0.89. A span operation rides on its parent span's operation where that
    is in the same service (a step of a handler); an entry or root span's operation has none (None).
    """
    hosts = counts.hosts.get(key)
    if hosts:
        found = operation_ratios.get(max(hosts, key=lambda h: hosts[h]))
        if found is not None:
            return found
    if key[1] == "operation":
        # a root span's operation rides on requests from outside: its fall is fewer requests
        return None
    return own.get(key[0], 1.0)


def _operation_ratios(counts: _Counts, r: float) -> dict[tuple[str, str], float]:
    """Each (service, span operation)'s rate ratio over the spans' size factor ``r``."""
    out: dict[tuple[str, str], float] = {}
    for key in set(counts.normal) | set(counts.incident):
        if key[1] == "operation":
            n0, n1 = counts.normal.get(key, 0), counts.incident.get(key, 0)
            out[(key[0], key[2])] = (n1 + PRIOR) / ((n0 + PRIOR) * r)
    return out


def _shifts(
    counts: _Counts,
    r: float | None = None,
    operation_ratios: dict[tuple[str, str], float] | None = None,
    stopped_as_error: bool = True,
) -> list[PatternShift]:
    """Changed events of ``counts``; ``r`` the size factor (by default estimated from ``counts``).

    ``operation_ratios``: each (service, span operation)'s rate ratio over the span size factor, the
    traffic a log line's host operation had (``relative_ratio`` of log events is taken against it).
    ``stopped_as_error``: a log statement that fell at least ``MIN_RATE_RATIO`` below the traffic it
    rides on weighs as an error event (``stopped_code_path``).
    """
    keys = set(counts.normal) | set(counts.incident)
    if r is None:
        r = _size(counts)
    p = r / (1.0 + r)
    own = _service_ratios(counts, keys, r)
    operation_ratios = operation_ratios or {}
    out: list[PatternShift] = []
    for key in keys:
        n0 = counts.normal.get(key, 0)
        n1 = counts.incident.get(key, 0)
        expected = (n0 + PRIOR) * r
        ratio = (n1 + PRIOR) / expected
        if 1.0 / MIN_RATE_RATIO < ratio < MIN_RATE_RATIO:
            continue
        z = binomial_z(n1 + PRIOR, n0 + PRIOR, p)
        service, kind, text = key
        if abs(z) < MIN_Z:
            continue
        error = key in counts.errors or kind in ("error", "origin")
        # fewer errors than before is an earlier failure that stopped (a recovery), not evidence
        # about this incident (Nezha Train Ticket AC@1 unchanged, one cpu case found where a
        # previous fault's fading error lines had outranked it, one case lost whose service
        # was ranked only by such a fade)
        if error and z < 0:
            continue
        traffic = _traffic_ratio(counts, key, own, operation_ratios)
        relative = ratio / traffic if traffic is not None else 1.0
        # Only a stopped log statement weighs as an error. A span operation that stopped under its
        # parent tells the fault's type (``engine._kind_evidence``) but not which service: weighed
        # as an error it outranked other causes (Nezha AC@1 Online Boutique 0.88 -> 0.83, Train
        # Ticket 0.93 -> 0.86; a caller's operations stop with a broken callee's as well).
        stopped = stopped_as_error and kind == "log" and z < 0 and stopped_code_path(relative)
        score = math.log1p(abs(z)) * (1.0 if error or stopped else NON_ERROR_WEIGHT)
        if z < 0:
            score *= DECREASE_WEIGHT
        echo_share = counts.echoes.get(key, 0) / n1 if n1 else 0.0
        if echo_share >= ECHO_SHARE:
            score *= ECHO_WEIGHT
        out.append(
            PatternShift(
                service=service,
                kind=kind,
                key=text,
                normal_count=n0,
                incident_count=n1,
                expected=expected,
                z=z,
                score=score,
                error=error,
                first_seen=counts.first.get(key),
                examples=counts.examples.get(key, []),
                echo_share=echo_share,
                relative_ratio=relative,
            )
        )
    return out


def pattern_shifts(
    logs: list[LogRecord],
    spans: list[Span],
    normal_start: float,
    split: float,
    window_end: float,
    *,
    reference_logs: list[LogRecord] | None = None,
    reference_spans: list[Span] | None = None,
    stopped_as_error: bool = True,
    error_rises_only: bool = True,
) -> list[PatternShift]:
    """Log and span events whose share changed from the normal period to [split, window_end].

    The normal period is [normal_start, split) plus the records of a reference period, where the
    incident has one (``_Periods``). Logs and spans are separate sources, each with its own size
    factor. ``stopped_as_error``: see ``_shifts``. ``error_rises_only``: rises of events that are
    not errors are left out (``_fault_evidence``); they still mark a service as changed for the
    error-origin walk. Strongest first.
    """
    ref_logs, ref_spans = reference_logs or [], reference_spans or []
    periods = _Periods(normal_start, split, window_end)
    operations = {sp.span_id: sp.operation for sp in [*spans, *ref_spans]}
    log_counts, linked = _count_logs(logs, periods, ref_logs, operations) if logs else (None, [])
    span_shifts: list[PatternShift] = []
    op_ratios: dict[tuple[str, str], float] = {}
    if spans:
        span_counts = _count_spans(spans, periods, ref_spans)
        span_r = _size(span_counts)
        op_ratios = _operation_ratios(span_counts, span_r)
        span_shifts = _shifts(span_counts, span_r, op_ratios, stopped_as_error)
    if log_counts is None:
        out = span_shifts
    else:
        # The size factor of log events is fitted before origins are added (they are a re-count of
        # some error lines, not more traffic). Services whose own events changed, positively, are
        # the ones a wrong return value or a swallowed failure may hide in.
        r = _size(log_counts)
        first = _shifts(log_counts, r, op_ratios, stopped_as_error) + span_shifts
        changed = {p.service for p in first if p.z > 0}
        _origins(log_counts, linked, [*spans, *ref_spans], changed)
        out = _stronger_of(
            _shifts(log_counts, r, op_ratios, stopped_as_error), _new_against_reference(log_counts)
        )
        out += span_shifts
    if error_rises_only:
        out = [p for p in out if _fault_evidence(p)]
    out.sort(key=lambda s: (-s.score, s.service, s.kind, s.key))
    return out


AGAINST_REFERENCE = " (against the reference period)"


def _new_against_reference(counts: _Counts) -> list[PatternShift]:
    """Error statements of the incident that the known-good reference period does not show.

    The minutes before an alert may already be part of the failure (a fault that began earlier, a
    run of incidents on one service): against them an error that has not changed is no change. A
    reference period is known to be normal, so an error statement far more frequent in the incident
    than there is evidence however long it has been going on. Only errors: against one period
    recorded apart, the request mix differs (``_Periods``), and ordinary statements would all move.
    """
    if not counts.reference:
        return []
    keys = set(counts.reference) | set(counts.incident)
    pairs = [(counts.reference.get(k, 0), counts.incident.get(k, 0)) for k in keys if k[1] == "log"]
    if sum(1 for n0, n1 in pairs if n0 + n1 >= SIZE_FACTOR_MIN_SUPPORT) < SIZE_FACTOR_MIN_EVENTS:
        return []
    r = size_factor(pairs)
    p = r / (1.0 + r)
    out: list[PatternShift] = []
    for key in keys:
        n1 = counts.incident.get(key, 0)
        if key[1] != "log" or key not in counts.errors or not n1:
            continue
        n0 = counts.reference.get(key, 0)
        expected = (n0 + PRIOR) * r
        if (n1 + PRIOR) / expected < MIN_RATE_RATIO:
            continue
        z = binomial_z(n1 + PRIOR, n0 + PRIOR, p)
        if z < MIN_Z:
            continue
        echo_share = counts.echoes.get(key, 0) / n1
        score = math.log1p(z) * (ECHO_WEIGHT if echo_share >= ECHO_SHARE else 1.0)
        service, _, text = key
        out.append(
            PatternShift(
                service=service,
                kind="log",
                key=f"{text}{AGAINST_REFERENCE}",
                normal_count=n0,
                incident_count=n1,
                expected=expected,
                z=z,
                score=score,
                error=True,
                first_seen=counts.first.get(key),
                examples=counts.examples.get(key, []),
                echo_share=echo_share,
            )
        )
    return out


def _stronger_of(shifts: list[PatternShift], against_reference: list[PatternShift]) -> list[PatternShift]:
    """``shifts`` with each statement found against the reference as well kept once, the stronger."""
    by_event = {(p.service, p.kind, p.key): p for p in shifts}
    for p in against_reference:
        event = (p.service, p.kind, p.key.removesuffix(AGAINST_REFERENCE))
        if event not in by_event or by_event[event].score < p.score:
            by_event[event] = p
    return list(by_event.values())


def _fault_evidence(shift: PatternShift) -> bool:
    """Whether a changed event speaks of a fault rather than of what users asked for.

    Errors that rise do (errors that fall are left out in ``_shifts``); so do events that fall (a
    code path taken less, or no longer). A statement, operation or call that is not an error and
    rises, new or not, is what a change in the request mix looks like: more searches, a burst of
    cancellations, a batch job. On Nezha they were the load-mix shifts (a 2x rise of an INFO line,
    a caller's first calls of an operation in the window) that outranked CPU saturations and the
    faulty service's stopped code paths (Train Ticket AC@1/AC@3 0.79/0.89 with them, 0.89/0.93
    without; requiring 5 sd or more of them instead gave 0.86/0.93).
    """
    return shift.error or shift.z < 0


# An alert fires after its fault's first symptoms (an evaluation interval plus any ``for:``
# duration; recorded injection times lag the injection's first effect the same way). Events are
# timestamped to the millisecond, so their split need not wait for the metric onset, which is only
# as fine as the metric step: the pattern incident period starts this long before the alert. Too
# early costs little (a little normal traffic counted as incident dilutes a rise), too late hides
# the fault's first events in the normal period.
ALERT_LEAD_SECONDS = 30.0


def pattern_split(alert: float | None, onset: float, normal_start: float) -> float:
    """Where the normal period of events ends: just before the alert, else the metric onset."""
    if alert is None:
        return onset
    return max(alert - ALERT_LEAD_SECONDS, normal_start)


# Events are compared over the incident's first minutes only. A fault's own events come first (its
# exception, its new code path); later minutes fill with what follows it: retries, recoveries,
# operator actions, the next change. In a long window those outnumber the fault's own events and
# read as change of the services that merely carry them. Measured on the Nezha development split
# (AC@1/AC@3, Online Boutique | Train Ticket; the window otherwise runs to the next injection, ~8
# min): whole window 0.79/0.83 | 0.50/0.82; 2 min 0.83/0.88 | 0.57/0.71; 3 min 0.83/0.88 |
# 0.61/0.86; 4 min 0.83/0.88 | 0.64/0.86; 5 min 0.83/0.88 | 0.64/0.89; 7 min 0.83/0.88 | 0.57/0.86.
# Five minutes, the usual length of an incident's abnormal period in RCA benchmarks and of an
# alert's look-back, in the middle of the plateau.
EVENT_HORIZON_SECONDS = 300.0


def pattern_end(split: float, window_end: float) -> float:
    """Where the incident period of events ends: ``EVENT_HORIZON_SECONDS`` after its split."""
    return min(window_end, split + EVENT_HORIZON_SECONDS)


def channel_value(shifts: list[PatternShift]) -> float:
    """A service's pattern evidence: its strongest changed event (shifts come strongest first)."""
    return shifts[0].score if shifts else 0.0


def peer_contrast(values: dict[str, float]) -> dict[str, float]:
    """Each service's value above the median of all services' values in the same channel.

    A channel in which every service looks anomalous (a shared metric artefact, a load change)
    says little about which one is the cause; what counts is how far a service stands out from its
    peers in that channel. Subtracting one number per channel keeps the order within the channel.
    """
    if not values:
        return {}
    ordered = sorted(values.values())
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
    return {k: max(v - median, 0.0) for k, v in values.items()}

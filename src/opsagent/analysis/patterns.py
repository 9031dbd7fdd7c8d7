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

import math
from collections import defaultdict

from opsagent.analysis.event_counts import Changed, Counts, Periods, count_logs, origin_parts, origins
from opsagent.analysis.events import (
    DECREASE_WEIGHT,
    MIN_RATE_RATIO,
    MIN_Z,
    NON_ERROR_WEIGHT,
    PRIOR,
    SIZE_FACTOR_MIN_EVENTS,
    SIZE_FACTOR_MIN_SUPPORT,
    EventKind,
    PatternShift,
    binomial_z,
    code_path_stopped,
    size_factor,
)
from opsagent.analysis.span_counts import count_spans, span_owners, table_owners
from opsagent.analysis.spantable import SpanTable
from opsagent.domain import LogRecord, Span

# An error template most of whose incident lines are echoes (written in a span below which another
# service failed or changed) counts this much: it is evidence of propagation, not of a fault in the
# service that writes it. Half, as for the other secondary evidence (decreases, non-error events).
ECHO_WEIGHT = 0.5
# "Most": the share of a template's incident lines that must be echoes for it to count as one.
ECHO_SHARE = 0.5


def _size(counts: Counts) -> float:
    keys = set(counts.normal) | set(counts.incident)
    return size_factor((counts.normal.get(k, 0), counts.incident.get(k, 0)) for k in keys)


def _service_ratios(counts: Counts, keys: set[tuple[str, EventKind, str]], r: float) -> dict[str, float]:
    """Each service's typical incident-to-normal ratio over ``r`` (its own size factor relative to all)."""
    pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key in keys:
        if key[1] != "origin":
            pairs[key[0]].append((counts.normal.get(key, 0), counts.incident.get(key, 0)))
    return {svc: size_factor(ps) / r for svc, ps in pairs.items()}


def _traffic_ratio(
    counts: Counts,
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


def _operation_ratios(counts: Counts, r: float) -> dict[tuple[str, str], float]:
    """Each (service, span operation)'s rate ratio over the spans' size factor ``r``."""
    out: dict[tuple[str, str], float] = {}
    for key in set(counts.normal) | set(counts.incident):
        if key[1] == "operation":
            n0, n1 = counts.normal.get(key, 0), counts.incident.get(key, 0)
            out[(key[0], key[2])] = (n1 + PRIOR) / ((n0 + PRIOR) * r)
    return out


def _shifts(
    counts: Counts,
    r: float | None = None,
    operation_ratios: dict[tuple[str, str], float] | None = None,
    stopped_as_error: bool = True,
    stopped_full_weight: bool = False,
) -> list[PatternShift]:
    """Changed events of ``counts``; ``r`` the size factor (by default estimated from ``counts``).

    ``operation_ratios``: each (service, span operation)'s rate ratio over the span size factor, the
    traffic a log line's host operation had (``relative_ratio`` of log events is taken against it).
    ``stopped_as_error``: a log statement that fell at least ``MIN_RATE_RATIO`` below the traffic it
    rides on weighs as an error event (``stopped_code_path``). ``stopped_full_weight``: and without
    the fall's ``DECREASE_WEIGHT``. A fall is discounted because a service that loses requests (a
    victim of a broken caller) loses its statements too; a stopped code path has ruled that out (its
    requests kept coming), so the service left its handler early, which is what an injected
    exception or a changed return does in the service itself, and its callers' error lines are the
    consequence.
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
        stopped = stopped_as_error and kind == "log" and code_path_stopped(kind, text, z, relative)
        score = math.log1p(abs(z)) * (1.0 if error or stopped else NON_ERROR_WEIGHT)
        if z < 0 and not (stopped and stopped_full_weight):
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
                answered_by=frozenset(counts.answered.get(key, ())),
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
    stopped_full_weight: bool = False,
    error_rises_only: bool = True,
    shared_errors: bool = False,
    origin_by_operation: bool = False,
) -> list[PatternShift]:
    """Log and span events whose share changed from the normal period to [split, window_end].

    The normal period is [normal_start, split) plus the records of a reference period, where the
    incident has one (``Periods``). Logs and spans are separate sources, each with its own size
    factor. ``stopped_as_error``: see ``_shifts``. ``error_rises_only``: rises of events that are
    not errors are left out (``_fault_evidence``); they still mark a service as changed for the
    error-origin walk. ``shared_errors``: an error event that rises in several services at once
    weighs as an echo (``_shared_as_echoes``). ``origin_by_operation``: the origin walk blames a
    callee only where the operation the trace called changed (``event_counts.Changed``), not any
    service with a change anywhere. Strongest first.
    """
    ref_logs, ref_spans = reference_logs or [], reference_spans or []
    periods = Periods(normal_start, split, window_end)
    # each span id's (service, operation): the window's for the span counts, and with the
    # reference's (later ones win) for the spans the log lines were written in
    # (the span counts of a window without a reference read its spans' table instead)
    table = SpanTable.of(spans)
    owners = table_owners(table) if logs or ref_spans else {}
    all_owners = {**owners, **span_owners(ref_spans)} if ref_spans else owners
    log_counts, linked = count_logs(logs, periods, ref_logs, all_owners) if logs else (None, [])
    span_shifts: list[PatternShift] = []
    op_ratios: dict[tuple[str, str], float] = {}
    if spans:
        span_counts = count_spans(spans, periods, ref_spans, (owners, all_owners) if ref_spans else None)
        span_r = _size(span_counts)
        op_ratios = _operation_ratios(span_counts, span_r)
        span_shifts = _shifts(span_counts, span_r, op_ratios, stopped_as_error, stopped_full_weight)
    if log_counts is None:
        out = span_shifts
    else:
        # The size factor of log events is fitted before origins are added (they are a re-count of
        # some error lines, not more traffic). Services whose own events changed, positively, are
        # the ones a wrong return value or a swallowed failure may hide in.
        r = _size(log_counts)
        first = _shifts(log_counts, r, op_ratios, stopped_as_error, stopped_full_weight) + span_shifts
        changed = _changed(first, log_counts) if origin_by_operation else _changed_services(first)
        origins(log_counts, linked, SpanTable.joined(table, ref_spans) if ref_spans else table, changed)
        out = _stronger_of(
            _shifts(log_counts, r, op_ratios, stopped_as_error, stopped_full_weight),
            _new_against_reference(log_counts),
        )
        out += span_shifts
    if error_rises_only:
        out = [p for p in out if _fault_evidence(p)]
    if shared_errors:
        _shared_as_echoes(out)
    out.sort(key=lambda s: (-s.score, s.service, s.kind, s.key))
    return out


def _changed(first: list[PatternShift], counts: Counts) -> Changed:
    """The (service, span operation) pairs whose own events rose: span operations that rose or
    failed more, and the operations that host a log statement that rose."""
    pairs: set[tuple[str, str]] = set()
    for p in first:
        if p.z <= 0:
            continue
        if p.kind in ("operation", "error"):
            pairs.add((p.service, p.key))
        elif p.kind == "log":
            pairs.update(counts.hosts.get((p.service, p.kind, p.key), {}))
    return Changed(operations=frozenset(pairs))


def _changed_services(first: list[PatternShift]) -> Changed:
    return Changed(services=frozenset(p.service for p in first if p.z > 0))


AGAINST_REFERENCE = " (against the reference period)"


def _new_against_reference(counts: Counts) -> list[PatternShift]:
    """Error statements of the incident that the known-good reference period does not show.

    The minutes before an alert may already be part of the failure (a fault that began earlier, a
    run of incidents on one service): against them an error that has not changed is no change. A
    reference period is known to be normal, so an error statement far more frequent in the incident
    than there is evidence however long it has been going on. Only errors: against one period
    recorded apart, the request mix differs (``Periods``), and ordinary statements would all move.
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


def _error_event(shift: PatternShift) -> tuple[tuple[str, str], str]:
    """The error event a shift is about and the service that raised it, whichever service the
    shift is counted for: an origin is its error line's template, raised by the service that wrote
    the line (where it surfaced); a comparison with the reference period is the event itself."""
    key = shift.key.removesuffix(AGAINST_REFERENCE)
    if shift.kind != "origin":
        return (shift.kind, key), shift.service
    template, surfaced_in = origin_parts(key)
    return ("log", template), shift.service if surfaced_in is None else surfaced_in


def _shared_as_echoes(shifts: list[PatternShift]) -> None:
    """Weigh as an echo (``ECHO_WEIGHT``), in place, each error rise whose event two or more
    services raised at once.

    The trace places an error line below which another service failed as an echo (``origins``),
    but a call that could not be made leaves no span below the line: "no instances available for
    X", a refused connection, a timeout to a dependency that is restarting. The same framework or
    client error rising in several services at once is what they share (a dependency, a common
    path) failing, not a fault of each; a fault's own error is raised by the one service that runs
    the faulty code. An origin blamed on a callee is raised by the service that wrote the line, so
    the walk's blame is not a second service. The services' other evidence (a stopped code path,
    their own error statements) is untouched. Lines already counted as echoes are not discounted
    twice.
    """
    raisers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in shifts:
        if p.error and p.z > 0:
            event, raiser = _error_event(p)
            raisers[event].add(raiser)
    for p in shifts:
        if p.error and p.z > 0 and p.echo_share < ECHO_SHARE and len(raisers[_error_event(p)[0]]) >= 2:
            p.score *= ECHO_WEIGHT


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

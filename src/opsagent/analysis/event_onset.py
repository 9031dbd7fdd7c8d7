"""When the events changed: the sharpest rise of an error event, inside the range the alert bounds.

Log lines and spans are timestamped to the millisecond, so the moment a fault's errors begin can be
dated far more finely than a metric step. Each error event (an error log template, a failed span or
an error-handler span, per service) is counted before and after each candidate time; the exposure on
each side is the number of all events there (so gaps in the recording and load changes cancel). At
each candidate the strongest rise of one error event, by the conditional binomial test the event
comparison uses (``events.binomial_z``), measures how sharply the errors changed there. The onset is
the first occurrence of the error event that rose most at the earliest candidate where a rise
reaches ``MIN_ONSET_Z`` (a fault's own errors come before the sharper ones it causes elsewhere).
The comparison after a candidate covers a fixed stretch (``AFTER_SECONDS``): long enough to hold a
fault's first errors, short enough that a later change (the next incident, a recovery) cannot decide
where this one began. When no error rose that far, a log statement that stopped while its service kept
logging dates the events (``_stopped_statement``): a code fault that writes no error line. When
neither did, the earliest error rise that the event comparison itself counts as a shift
(``events.MIN_Z``) is returned as a weak onset (``EventOnset.sharp`` False): a fault whose errors are
few (a sparse recording, a rarely called path, an earlier episode of the same error in the normal
period) is still dated by them, and the split decides how far to trust it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from opsagent.analysis.events import MIN_Z, PRIOR, error_operation
from opsagent.analysis.logs import line_templates
from opsagent.analysis.spantable import IntArray, SpanTable
from opsagent.domain import LogRecord, Span

FloatArray = npt.NDArray[np.float64]

# Candidates are this far apart: finer than any metric step, coarse enough to stay cheap.
CANDIDATE_SECONDS = 5.0
# The stretch after a candidate that its errors are counted over.
AFTER_SECONDS = 120.0
# The strongest error rise must pass this (in sd) for the events to date the onset at all: below
# it, no error event changed beyond noise.
MIN_ONSET_Z = 5.0
# A statement has stopped only where it stays away this long: as long as the incident's events are
# compared over (``split.EVENT_HORIZON_SECONDS``). A fault's changed code path stays changed while
# the fault lasts; a statement that pauses and comes back within minutes is the request mix (a load
# generator's scenarios take turns), not a fault.
STOPPED_SECONDS = 300.0


class EventOnset(NamedTuple):
    """Where the events changed, how strongly (sd), and whether the change passed the onset bar
    (``MIN_ONSET_Z``: an error rise or a stopped statement); not ``sharp``: only an error rise that
    the event comparison counts (``events.MIN_Z``)."""

    time: float
    strength: float
    sharp: bool = True


@dataclass(frozen=True)
class _Events:
    everything: FloatArray  # every event's time, sorted
    errors: dict[str, FloatArray]  # each error event's sorted times
    statements: dict[str, FloatArray]  # each other log statement's sorted times
    # each service's events that are not errors, times sorted: what its statements' shares are of
    by_service: dict[str, FloatArray]


def _sorted(times: dict[str, list[float]]) -> dict[str, FloatArray]:
    return {k: np.sort(np.asarray(v, dtype=np.float64)) for k, v in times.items()}


def _events(logs: list[LogRecord], spans: list[Span]) -> _Events:
    times: list[float] = []
    errors: dict[str, list[float]] = defaultdict(list)
    statements: dict[str, list[float]] = defaultdict(list)
    by_service: dict[str, list[float]] = defaultdict(list)
    for rec, (template, error) in zip(logs, line_templates(logs), strict=True):
        times.append(rec.timestamp)
        key = f"{rec.service}\x00log\x00{template}"
        (errors if error else statements)[key].append(rec.timestamp)
        if not error:
            by_service[rec.service].append(rec.timestamp)
    if not spans:
        return _Events(
            np.sort(np.asarray(times, dtype=np.float64)),
            _sorted(errors),
            _sorted(statements),
            _sorted(by_service),
        )
    # The spans from the engine's span table (prepare built it for the same list), grouped by
    # array operations rather than a step per span (a window holds up to ~100k). Each group's
    # times are sorted in the end, so only the groups and their order of first appearance matter,
    # which are those of the loop over the spans.
    table = SpanTable.of(spans)
    pairs, pair = table.operations
    handler = np.fromiter((error_operation(op) for _, op in pairs), dtype=np.bool_, count=len(pairs))
    failing = table.error | handler[pair]
    span_errors = _groups(pair[failing], table.start[failing])
    span_services = _groups(table.service[~failing], table.start[~failing])
    for code, stamps in span_errors:
        service, operation = pairs[code]
        errors[f"{service}\x00span\x00{operation}"].extend(stamps.tolist())
    for code, stamps in span_services:
        by_service[table.services[code]].extend(stamps.tolist())
    return _Events(
        np.sort(np.concatenate([np.asarray(times, dtype=np.float64), table.start])),
        _sorted(errors),
        _sorted(statements),
        _sorted(by_service),
    )


def _groups(codes: IntArray, values: FloatArray) -> list[tuple[int, FloatArray]]:
    """Each distinct code with its values, codes in order of first appearance."""
    if not codes.size:
        return []
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = [*starts[1:].tolist(), len(ordered)]
    parts = [
        (int(ordered[a]), int(order[a]), values[order[a:b]])
        for a, b in zip(starts.tolist(), ends, strict=True)
    ]
    parts.sort(key=lambda part: part[1])  # by the first occurrence of each code
    return [(code, stamps) for code, _, stamps in parts]


def _stopped_statement(
    events: _Events, normal_start: float, candidates: FloatArray, bar: float = MIN_ONSET_Z
) -> EventOnset | None:
    """Where a log statement stopped most sharply while its service kept logging, or None below
    ``bar`` (sharp at ``MIN_ONSET_Z``).

    A fault that raises no error line (an exception caught on the way, a changed return value)
    takes the code past statements it wrote on every request: the statement falls against its own
    service's events (so a service that merely lost traffic does not count). Against those that are
    not errors: a new error line adds to a service's events without taking any statement's place,
    so a statement whose service began failing on other requests (the next incident's errors, a
    callee's failures logged) has not stopped. Nor has one that comes back within
    ``STOPPED_SECONDS``: its fall over the counted stretch was a lull in the request mix (Train
    Ticket ``08:52:06``: a seat-service statement paused for two minutes while the recording
    resumed after a gap, and dated the events 2.5 minutes before the fault). The onset is the
    candidate where the fall is sharpest, just after the statement's last occurrence before it.
    """
    best, onset = 0.0, 0.0
    for key, times in events.statements.items():
        service = key.split("\x00", 1)[0]
        z, _ = _rises(events.by_service[service], times, normal_start, candidates, falls=True)
        following = np.append(times, np.inf)[np.searchsorted(times, candidates, side="left")]
        z = np.where(following - candidates < STOPPED_SECONDS, 0.0, z)
        k = int(np.argmin(z))
        if -z[k] > best:
            best, onset = float(-z[k]), float(candidates[k])
    return EventOnset(onset, best, sharp=best >= MIN_ONSET_Z) if best >= bar else None


def _rises(
    everything: FloatArray,
    times: FloatArray,
    normal_start: float,
    candidates: FloatArray,
    falls: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """One error event's rise at each candidate (sd; 0 where it cannot be measured), and its first
    occurrence at or after each candidate. With ``falls``, also where it no longer occurs after a
    candidate (a fall, negative)."""
    ends = candidates + AFTER_SECONDS
    start_i = np.searchsorted(everything, normal_start, side="left")
    cut_i = np.searchsorted(everything, candidates, side="left")
    total0 = cut_i - start_i
    total1 = np.searchsorted(everything, ends, side="left") - cut_i
    first = int(np.searchsorted(times, normal_start, side="left"))
    n0 = np.searchsorted(times, candidates, side="left") - first
    n1 = np.searchsorted(times, ends, side="left") - first - n0
    z = np.zeros(candidates.size, dtype=np.float64)
    seen = np.zeros(candidates.size, dtype=np.float64)
    at = np.nonzero(((n0 > 0) if falls else (n1 > 0)) & (total0 > 0) & (total1 > 0))[0]
    if not at.size:
        return z, seen
    t0, t1 = total0[at].astype(np.float64), total1[at].astype(np.float64)
    p = (t1 + PRIOR) / (t0 + t1 + 2 * PRIOR)
    z[at] = _binomial_z(n1[at].astype(np.float64) + PRIOR, n0[at].astype(np.float64) + PRIOR, p)
    hit = at[n1[at] > 0]
    seen[hit] = times[first + n0[hit]]
    return z, seen


def _binomial_z(n1: FloatArray, n0: FloatArray, p: FloatArray) -> FloatArray:
    """``binomial_z`` of each element: the same operations in the same order (a statement's rise is
    measured at ~30 candidates, for each of a window's hundreds of statements). Counts here carry
    the prior, so both are positive, and ``p`` lies strictly between 0 and 1. On CPUs with AVX-512,
    numpy's ``log`` may round a last bit unlike ``math.log``: ~1e-15 sd, far below any threshold."""
    n = n0 + n1
    q = n1 / n
    g = n1 * np.log(q / p) + n0 * np.log((1.0 - q) / (1.0 - p))
    z = np.sqrt(np.maximum(2.0 * g, 0.0))
    return np.where(q >= p, z, -z)


def _rise_start(everything: FloatArray, times: FloatArray, normal_start: float, lo: float) -> float | None:
    """Where an error event's rise began, when it had already risen before ``lo``: the earliest of
    the candidates before ``lo`` from which its rise holds without a break, or None when it had not
    risen over the stretch just before ``lo``.

    The alert bounds the search by the usual ``for:`` of a rule, but some alerts fire later (a
    burn-rate alert over a long window, a slow rollout): the event that rose most in the range was
    then already rising when the range began, and the range's start is not its onset.
    """
    candidates = np.arange(lo - AFTER_SECONDS, normal_start, -CANDIDATE_SECONDS)
    if candidates.size == 0:
        return None
    z, seen = _rises(everything, times, normal_start, candidates)
    if z[0] < MIN_ONSET_Z:
        return None
    broken = np.nonzero(z < MIN_ONSET_Z)[0]
    last = int(broken[0]) - 1 if broken.size else candidates.size - 1
    return float(seen[last])


def event_onset(
    logs: list[LogRecord],
    spans: list[Span],
    normal_start: float,
    lo: float,
    hi: float,
    weak_stops: bool = True,
) -> EventOnset | None:
    """The first candidate in [lo, hi] where an error event rose by ``MIN_ONSET_Z`` (an error first
    seen after ``hi`` does not count), or where its rise began when it had already risen before
    ``lo`` (``_rise_start``); else a stopped statement; else a weak onset (``_weak_rise``).

    Events before ``normal_start`` are not counted. None when there are no events, or no error
    event rose by ``events.MIN_Z`` at any candidate and no statement stopped.
    """
    if hi < lo or not (logs or spans):
        return None
    events = _events(logs, spans)
    everything, errors = events.everything, events.errors
    candidates = np.arange(lo, hi + CANDIDATE_SECONDS / 2, CANDIDATE_SECONDS)
    best = np.zeros(candidates.size, dtype=np.float64)
    # per candidate, the first occurrence at or after it of the error event that rose most there
    first_seen = np.zeros(candidates.size, dtype=np.float64)
    winner: list[str] = [""] * candidates.size
    for key, times in errors.items():
        z, seen = _rises(everything, times, normal_start, candidates)
        # an error first seen after ``hi`` (after the alert) is not what the alert is about, and would
        # date the onset outside the range the alert bounds
        z = np.where(seen > hi, 0.0, z)
        better = z > best
        best = np.where(better, z, best)
        first_seen = np.where(better, seen, first_seen)
        for i in np.nonzero(better)[0]:
            winner[i] = key
    # The earliest candidate where an error rose past the bar: a fault's own errors come first, the
    # errors it causes elsewhere (callers' timeouts, retries) after them and often sharper.
    risen = np.nonzero(best >= MIN_ONSET_Z)[0]
    if not risen.size:
        stopped = _stopped_statement(events, normal_start, candidates, MIN_Z if weak_stops else MIN_ONSET_Z)
        if stopped is not None and stopped.sharp:
            return stopped
        # Weak onsets both: the earlier of a weak error rise and a weak stop, for the reason above.
        weak = [found for found in (_weak_rise(best, first_seen), stopped) if found is not None]
        return min(weak, key=lambda found: found.time, default=None)
    k = int(risen[0])
    earlier = _rise_start(everything, errors[winner[k]], normal_start, lo)
    if earlier is not None:
        return EventOnset(earlier, float(best[k]))
    # A new error scores alike at every candidate before its first occurrence (until the counted
    # stretch no longer reaches it): the onset is that first occurrence, not the earliest candidate.
    # A statement that stopped before it is the fault's first change (its code path changed; the
    # errors it caused came after).
    stopped = _stopped_statement(events, normal_start, candidates)
    if stopped is not None and stopped.time < first_seen[k]:
        return stopped
    return EventOnset(float(first_seen[k]), float(best[k]))


def _weak_rise(best: FloatArray, first_seen: FloatArray) -> EventOnset | None:
    """The first occurrence of the error event that rose most at the earliest candidate where an
    error rose by ``events.MIN_Z`` (what the event comparison counts as a shift), as a weak onset;
    None when none did.

    Below ``MIN_ONSET_Z`` a rise may be noise among a window's hundreds of events, but a fault's own
    errors can stay below it: a few lines in a sparse recording, or the same error in an earlier
    episode counted on the normal side. The earliest rise, not the strongest, for the same reason as
    above: a fault's own errors come before its callers' (often more numerous) ones.
    """
    counted = np.nonzero(best >= MIN_Z)[0]
    if not counted.size:
        return None
    k = int(counted[0])
    return EventOnset(float(first_seen[k]), float(best[k]), sharp=False)

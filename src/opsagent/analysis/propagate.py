"""Stage 6, propagate: discount the services whose anomaly an anomalous callee explains.

Faults propagate from callee to caller: a slow or failing callee makes its callers wait or fail. So a
service whose strongest callee is itself anomalous enough to explain it is more likely a victim. The
call graph is the bundle's topology plus the call edges seen in spans. One guard keeps causes from
being discounted: a service whose strongest evidence is its own CPU, memory, disk, restarts or
target health is not a victim (callees make callers wait, not burn CPU, fill memory or go down).
A service that went down (its strongest evidence is its own target health) explains every service
that calls it, directly or through others, whatever their scores: a stopped store has one piece of
evidence, its availability, while each caller piles up error ratios and "connection refused" lines,
and all of that is the store's doing. Such callers are placed below it unless their own resources
lead. (No development dataset records target health, so this is neutral there by construction; it
decides the live lab's dependency-down faults.)
A second guard reads the failing requests themselves: a callee that they called, and that neither
failed nor changed on their path, does not explain the service's failure (``answered_callees``),
unless it answered slowly. Nor does a callee the service stopped calling (``silenced_callees``): its
lost traffic is the service's doing.
Another guard, that a callee whose anomaly started later than its caller's explains nothing,
changed no rank on any development case at +0, +60 or +180 s and was removed (docs/ENGINE.md).
A fault can also be seen twice without an edge between the two views: a load balancer or proxy in
front of a service, measured by the service's callers, is a node of its own that calls nothing the
recording sees (``caller_views``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from opsagent.analysis.impact import Excess
from opsagent.analysis.options import EngineOptions
from opsagent.analysis.prepare import HOST_PREFIXES, Prepared
from opsagent.analysis.series import ScoredSeries, ServiceEvidence
from opsagent.domain import SignalKind

# A service whose strongest callee is at least this anomalous relative to itself is more likely a
# victim of that callee than a cause; its score is multiplied by VICTIM_DISCOUNT. Below 1: a callee
# needs a good part, not all, of its caller's anomaly, since callers aggregate several callees'
# troubles (and catch and log their failures, which adds error evidence on the caller). Measured on
# the development split (AC@1, Online Boutique / Train Ticket; Sock Shop and PetShop unchanged from 0.5
# to 0.8): 0.8: 0.75/0.43, 0.7: 0.75/0.43, 0.6: 0.79/0.50, 0.5: 0.79/0.46.
PROPAGATION_RATIO = 0.6
VICTIM_DISCOUNT = 0.5
# A callee must itself be anomalous beyond noise (log1p of 3 sd) to explain anything.
MIN_EXPLAINING_SCORE = math.log1p(3.0)
# A service's own resource signal "leads" when it scores at least this share of the service's top
# channel: on the log scale 0.8 is e.g. 55 sd against 150, as strong as its strongest within the spread
# of one service's top signals, not a side effect an order of magnitude weaker.
RESOURCE_SHARE = 0.8
# a service that went down is not a victim either: a failing callee makes it fail, not vanish
_RESOURCE_KINDS = frozenset(
    {SignalKind.CPU, SignalKind.MEMORY, SignalKind.DISK, SignalKind.RESTARTS, SignalKind.UP}
)
_DOWN_KINDS = frozenset({SignalKind.UP})


@dataclass
class Placement:
    """The call graph around the suspects, and which services a callee explains."""

    callees: dict[str, set[str]] = field(default_factory=dict)
    callers: dict[str, set[str]] = field(default_factory=dict)
    explained_by: dict[str, str] = field(default_factory=dict)
    # services that went down (their own target health leads their evidence)
    down: set[str] = field(default_factory=set)
    # a callers' view (a balancer, a proxy) -> the service whose fault it shows (``caller_views``)
    views: dict[str, str] = field(default_factory=dict)
    # service -> the callees its failing requests called and found answering normally (``answered_callees``)
    answered: dict[str, set[str]] = field(default_factory=dict)
    # service -> the callees it stopped calling while it kept being called (``silenced_callees``)
    silenced: dict[str, set[str]] = field(default_factory=dict)


def _leads(ev: ServiceEvidence, counts: Callable[[ScoredSeries], bool]) -> bool:
    """Whether a scored series that ``counts`` accepts is about as strong as the service's strongest
    evidence (``RESOURCE_SHARE`` of its top channel)."""
    top = max(ev.channels.values(), default=0.0)
    return top > 0 and any(counts(e) and e.weighted >= RESOURCE_SHARE * top for e in ev.scored)


def resource_led(ev: ServiceEvidence, kinds: frozenset[SignalKind] = _RESOURCE_KINDS) -> bool:
    """Whether a resource of the service's own container (one of ``kinds``) is about as strong as its
    strongest evidence."""
    return _leads(
        ev,
        lambda e: (
            e.series.source == "metric"
            and e.series.kind in kinds
            and not e.series.signal.lower().startswith(HOST_PREFIXES)
        ),
    )


def latency_led(ev: ServiceEvidence) -> bool:
    """Whether the service's latency (a metric's or its spans' own time) is about as strong as its
    strongest evidence: it answers slowly."""
    return _leads(ev, lambda e: e.series.kind is SignalKind.LATENCY)


def down_led(ev: ServiceEvidence) -> bool:
    """Whether the service's own target health (it went down) is about as strong as its strongest evidence."""
    return resource_led(ev, _DOWN_KINDS)


def below_down_callees(
    scores: dict[str, float], callees: dict[str, set[str]], down: set[str], keep: set[str]
) -> dict[str, str]:
    """Place every service that reaches a down service through its calls below it, in place; return
    service -> the down service that explains it. Services in ``keep`` (led by their own resources)
    and the down services themselves are left alone."""
    explained: dict[str, str] = {}
    for service, own in list(scores.items()):
        if service in down or service in keep or own <= 0:
            continue
        reached: set[str] = set()
        frontier = [c for c in callees.get(service, ()) if c != service]
        while frontier:
            callee = frontier.pop()
            if callee in reached:
                continue
            reached.add(callee)
            frontier.extend(c for c in callees.get(callee, ()) if c not in reached)
        culprits = [d for d in reached & down if scores.get(d, 0.0) >= MIN_EXPLAINING_SCORE]
        if culprits:
            worst = max(culprits, key=lambda d: scores[d])
            scores[service] = min(own, scores[worst] * VICTIM_DISCOUNT)
            explained[service] = worst
    return explained


def propagation_adjust(
    scores: dict[str, float],
    callees: dict[str, set[str]],
    resource_led: set[str] | None = None,
    answered: dict[str, set[str]] | None = None,
) -> dict[str, str]:
    """Discount likely victims in place; return service -> the callee that explains it.

    Services in ``resource_led`` are never discounted; ``answered``: per service, the callees that
    explain nothing: the trace shows them answering its failing requests normally
    (``answered_callees``), or it stopped calling them (``silenced_callees``).
    """
    original = dict(scores)
    explained_by: dict[str, str] = {}
    answered = answered or {}
    for service, own in original.items():
        if resource_led is not None and service in resource_led:
            continue
        cleared = answered.get(service, set())
        candidates = [
            c for c in callees.get(service, ()) if c in original and c != service and c not in cleared
        ]
        if not candidates or own <= 0:
            continue
        top = max(candidates, key=lambda c: original[c])
        if original[top] >= MIN_EXPLAINING_SCORE and original[top] >= PROPAGATION_RATIO * own:
            scores[service] = own * VICTIM_DISCOUNT
            explained_by[service] = top
    return explained_by


def _lead(ev: ServiceEvidence) -> tuple[SignalKind, float] | None:
    """The kind and onset of a service's strongest scored series (None without an onset)."""
    top = max(ev.scored, key=lambda e: e.weighted, default=None)
    if top is None or top.result.onset is None:
        return None
    return top.series.kind, top.result.onset


def _covers(cause: Excess, view: Excess) -> bool:
    """Whether one excess accounts for all of another, in request-seconds and failed requests."""
    return (
        cause.seconds >= view.seconds
        and cause.failures >= view.failures
        and (cause.seconds or cause.failures) > 0
    )


def caller_views(
    scores: dict[str, float],
    evidence: dict[str, ServiceEvidence],
    callees: dict[str, set[str]],
    callers: dict[str, set[str]],
    impact: dict[str, tuple[float, Excess]],
) -> dict[str, str]:
    """Place a callers' view of a service's fault below the service, in place; return view -> service.

    A balancer or proxy in front of a service is measured by the service's callers: its latency is
    the service's latency plus a hop, its failures the service's failures, on the part of the
    service's requests that passed through it. Such a node calls nothing the recording sees (its
    onward call is the service's own server side) and is called only by services that call the
    service too, so propagation never relates the two, and it can outrank the service on a sharper
    percentile. Three things, none a name, say it is a view: (1) structure: it calls nothing and
    its callers are among the service's callers, with no edge between the two; (2) the same fault:
    the strongest series of both are of one kind and moved at the same point; (3) amounts: the
    service's own excess (request-seconds, failed requests) covers the view's in both, since the
    view carries a part of the service's requests. The reverse cannot hold for a view that is the
    cause: a slow balancer delays only what passes through it, so the service behind it would show no
    move of its own, or a smaller excess. The service must also be anomalous enough to explain the
    view by the callee test of ``propagation_adjust``. The service then takes the view's score (both
    are evidence of its fault) and the view is discounted as a victim.
    """
    original = dict(scores)
    views: dict[str, str] = {}
    for view in sorted(original, key=lambda s: -original[s]):
        seen_by = callers.get(view, set())
        lead = _lead(evidence[view]) if view in evidence else None
        if callees.get(view) or not seen_by or lead is None or view not in impact or view in views.values():
            continue
        best: str | None = None
        for cause, own in original.items():
            if cause == view or cause in views or cause not in impact or cause not in evidence:
                continue
            if view in callees.get(cause, ()) or not seen_by <= callers.get(cause, set()):
                continue
            if own > original[view] or own < MIN_EXPLAINING_SCORE or own < PROPAGATION_RATIO * original[view]:
                continue
            if _lead(evidence[cause]) != lead or not _covers(impact[cause][1], impact[view][1]):
                continue
            if best is None or own > original[best]:
                best = cause
        if best is not None:
            scores[best] = max(scores[best], original[view])
            scores[view] = original[view] * VICTIM_DISCOUNT
            views[view] = best
    return views


def answered_callees(ev: ServiceEvidence) -> set[str]:
    """The callees that answered the requests of the service's leading failure normally: the other
    services the failing requests called (``PatternShift.answered_by``), when an error the trace
    walk placed in the service is about as strong as its strongest changed event, and its changed
    events as strong as its strongest evidence.

    The callee rule reads the call graph: a caller of an anomalous callee is likely its victim. The
    walk (``event_counts.origins``) read the failing requests themselves: the callee operations
    they called neither failed, nor rose, nor logged a rising statement. So whatever that callee's
    anomaly is, it lies on other requests' paths and does not explain this failure. A failure whose
    requests called nothing below (a trace that ends at the service) clears no callee; nor does one
    whose callee answered slowly (``latency_led``, applied by ``propagate``): the walk reads failures
    and changed events, not durations, and a timeout leaves the slow callee's span unfailed.
    """
    top = max(ev.channels.values(), default=0.0)
    if top <= 0 or ev.channels.get("pattern", 0.0) < RESOURCE_SHARE * top:
        return set()
    strongest = max((p.score for p in ev.patterns), default=0.0)
    cleared: set[str] = set()
    for p in ev.patterns:
        if p.kind == "origin" and p.z > 0 and p.score >= RESOURCE_SHARE * strongest:
            cleared |= p.answered_by
    return cleared


def silenced_callees(ev: ServiceEvidence) -> set[str]:
    """The callees the service stopped calling while it kept being called (``calls.stopped_calls``).

    A caller that returns before its calls (an exception thrown early, an early exit) leaves its
    callees without its requests: their traffic falls, their request lines stop, and by the callee
    rule they would explain the caller, the one service that did it. A callee cannot make its caller
    stop calling it; it can fail or answer slowly, which the caller still calls through (a callee
    that went down is placed by ``below_down_callees``; a slow one, ``latency_led``, still explains).
    """
    return {callee for p in ev.patterns if p.kind == "edge" for callee in p.silenced}


def propagate(
    prepared: Prepared,
    evidence: dict[str, ServiceEvidence],
    scores: dict[str, float],
    options: EngineOptions,
    impact: dict[str, tuple[float, Excess]] | None = None,
) -> Placement:
    """Discount victims in ``scores`` (in place); the call graph and who explains whom."""
    opts = options.propagate
    placement = Placement()
    if not opts.topology:
        return placement
    placement.callees = prepared.callees
    led = {svc for svc, ev in evidence.items() if resource_led(ev)} if opts.resource_causes else None
    # a slow answer is not a normal one: a caller's timeout leaves the callee's span unfailed, and a
    # slow callee can make its caller give up calling it; the callee whose latency leads still explains
    slow = {svc for svc, ev in evidence.items() if latency_led(ev)}
    if opts.traced_origins:
        placement.answered = {svc: answered_callees(ev) - slow for svc, ev in evidence.items()}
    if opts.silenced_callees:
        silenced = {svc: silenced_callees(ev) - slow for svc, ev in evidence.items()}
        placement.silenced = {svc: callees for svc, callees in silenced.items() if callees}
    cleared = {
        svc: placement.answered.get(svc, set()) | placement.silenced.get(svc, set())
        for svc in placement.answered.keys() | placement.silenced.keys()
    }
    placement.explained_by = propagation_adjust(scores, placement.callees, led, cleared)
    if opts.resource_causes:
        placement.down = {svc for svc, ev in evidence.items() if down_led(ev)}
        if placement.down:
            placement.explained_by.update(
                below_down_callees(scores, placement.callees, placement.down, led or set())
            )
    callers: dict[str, set[str]] = defaultdict(set)
    for caller, cs in placement.callees.items():
        for c in cs:
            callers[c].add(caller)
    placement.callers = callers
    if opts.caller_views and impact:
        placement.views = caller_views(scores, evidence, placement.callees, callers, impact)
    return placement

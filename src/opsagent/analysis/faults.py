"""Fault-type classification: which kinds of signal moved first and most for a suspect.

CPU, memory, error and availability signals are specific: each points at one kind of fault (a
target down or a restart: the service stopped answering, ``unavailable``). Latency is generic:
CPU starvation, memory pressure (GC, swapping) and failing dependencies all slow a service down,
so a latency rise alone says "latency/network" only when no specific signal moved; it is also the
residual class when nothing at all moved beyond noise. Among the specific classes that moved, the
one that moved first is the cause and the others its consequences (a leak raises memory minutes
before the OOM kill raises errors); a tie goes to the strongest. The engine passes each series'
strength as far as it is still out when the alert fires (``EngineOptions.current_moves``).

CPU and memory often move in the same sample, whichever is at fault: a CPU stressor allocates
(Online Boutique's CPU faults raise memory by tens of sd within the minute), a memory stressor burns
a core (Sock Shop's memory faults saturate CPU). With ``shape`` on, the tie is broken by the shape
of the two moves, which needs no unit or limit: a fault's own resource shifts level at once (by its
first minute it has made most of its move), a side effect lags and keeps growing after it. The
magnitude rule below only decides when the shapes do not. "The same sample" is the same minute
for two level shifts (``resource_tie_seconds``): at a second's sampling, a memory stressor's CPU is
seen seconds before its allocations. Before both: a container's CPU at its
limit (``saturation.py``, read from the level, not the score) is CPU saturation, and what moved in
the same sample followed from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsagent.analysis.scoring import ONSET_Z
from opsagent.domain import FaultType, SignalKind

KIND_TO_FAULT: dict[SignalKind, FaultType] = {
    SignalKind.CPU: FaultType.CPU,
    SignalKind.MEMORY: FaultType.MEMORY,
    # A restart says the process died; why is what moved before it (memory that grew: an OOM kill).
    SignalKind.RESTARTS: FaultType.UNAVAILABLE,
    SignalKind.UP: FaultType.UNAVAILABLE,
    SignalKind.LATENCY: FaultType.LATENCY_NETWORK,
    SignalKind.NETWORK: FaultType.LATENCY_NETWORK,
    SignalKind.ERRORS: FaultType.ERRORS_CODE,
}
SPECIFIC = (FaultType.CPU, FaultType.MEMORY, FaultType.ERRORS_CODE, FaultType.UNAVAILABLE)
RESOURCES = (FaultType.CPU, FaultType.MEMORY)
# A class counts as moved at 5 robust sd: above the 3 sd of a single noisy point, so one control-
# chart excursion of an unrelated signal doesn't decide the type.
MOVED_Z = 5.0
# Memory and CPU often move in the same sample: a memory fault burns CPU (allocation, GC,
# swapping), while a CPU fault leaves memory near its level (a few sd of bookkeeping). When both
# moved at once, memory decides if it moved far beyond that: 20 sd.
MEMORY_OVER_CPU_Z = 20.0
# A move "made at once": at least half of its incident peak over the baseline reached within its
# first minute (``EARLY_SECONDS`` in the engine). Half splits "mostly there" from "mostly still to
# come" without preferring either.
PLATEAU_SHARE = 0.5
# The shapes decide only when both moves are clear: a series that barely cleared MOVED_Z has a
# first-minute share that is mostly noise (Online Boutique, a CPU hog whose memory rose 5 sd "at
# once" while its CPU, 13 sd, kept climbing, was typed memory). Twice the bar for having moved;
# measured on the development split, fault type among rank-1 cases at 7, 10 and 20 sd alike:
# Online Boutique 0.60 -> 0.65, no other dataset moved.
SHAPE_MIN_Z = 2 * MOVED_Z


@dataclass(frozen=True)
class KindEvidence:
    fault: FaultType
    z: float
    onset: float | None
    # Share of the series' move (peak over baseline) made within its first minute; None: unknown.
    early_share: float | None = None
    # CPU at its container's limit when the alert fires (``saturation.py``)
    saturated: bool = False


def _at_once(early_share: float | None) -> bool:
    """Whether a move made most of its way within its first minute."""
    return early_share is not None and early_share >= PLATEAU_SHARE


def _shape_decides(cpu: float | None, memory: float | None) -> FaultType | None:
    """CPU or memory when exactly one of the two moved at once and the other lagged."""
    if cpu is None or memory is None:
        return None
    if memory < PLATEAU_SHARE <= cpu:
        return FaultType.CPU
    if cpu < PLATEAU_SHARE <= memory:
        return FaultType.MEMORY
    return None


def classify(
    evidence: list[KindEvidence],
    ordering: bool = True,
    shape: bool = False,
    resource_tie_seconds: float = 0.0,
) -> FaultType:
    """The fault type of one suspect from its per-signal evidence.

    ``resource_tie_seconds``: CPU and memory that both shifted level (most of the move in its first
    minute) with onsets this close moved at once (the magnitude rule decides between them), not the
    one sampled first as the cause.
    """
    best: dict[FaultType, tuple[float, float]] = {}
    # the early share of each class's strongest series
    share: dict[FaultType, tuple[float, float | None]] = {}
    for item in evidence:
        onset = item.onset if item.onset is not None else float("inf")
        z, first = best.get(item.fault, (0.0, float("inf")))
        best[item.fault] = (max(z, item.z), min(first, onset) if item.z >= MOVED_Z else first)
        if item.z > share.get(item.fault, (-float("inf"), None))[0]:
            share[item.fault] = (item.z, item.early_share)
    if not best:
        return FaultType.UNKNOWN
    if not ordering:
        return max(best.items(), key=lambda kv: kv[1][0])[0]
    moved = {f: v for f, v in best.items() if f in SPECIFIC and v[0] >= MOVED_Z}
    if moved:
        earliest = min(v[1] for v in moved.values())
        early = {f: v for f, v in moved.items() if v[1] <= earliest}
        pair = [moved[f] for f in RESOURCES if f in moved]
        # Two level shifts within the same minute are one step, whichever was sampled first (a
        # memory stressor burns its core at once and has allocated seconds later): the shape and
        # magnitude rules decide. A move still growing after its first minute (a leak, the garbage
        # collection that follows it) keeps its order.
        if (
            len(pair) == 2
            and early.keys() & set(RESOURCES)
            and abs(pair[0][1] - pair[1][1]) <= resource_tie_seconds
            and all(_at_once(share[f][1]) for f in RESOURCES)
        ):
            early.update(zip(RESOURCES, pair, strict=True))
        memory = early.get(FaultType.MEMORY)
        cpu = early.get(FaultType.CPU)
        # CPU pinned at its limit is CPU saturation: what moved with it (the stressor's memory, a
        # restart by a starved liveness probe) followed from it
        if cpu is not None and any(i.saturated for i in evidence if i.fault is FaultType.CPU):
            return FaultType.CPU
        if shape and memory is not None and cpu is not None and min(memory[0], cpu[0]) >= SHAPE_MIN_Z:
            decided = _shape_decides(share[FaultType.CPU][1], share[FaultType.MEMORY][1])
            if decided is not None:
                return decided
        if memory is not None and FaultType.CPU in early and memory[0] >= MEMORY_OVER_CPU_Z:
            return FaultType.MEMORY
        # memory that grew and then a restart or a target down, in the same sample: the OOM kill
        # of a leak (the restart follows the growth; a process that died for another reason takes
        # its memory with it, it does not grow first)
        if FaultType.UNAVAILABLE in early and memory is not None and memory[0] >= MEMORY_OVER_CPU_Z:
            return FaultType.MEMORY
        return max(early.items(), key=lambda kv: kv[1][0])[0]
    latency = best.get(FaultType.LATENCY_NETWORK)
    if latency is not None and latency[0] >= MOVED_Z:
        return FaultType.LATENCY_NETWORK
    beyond_noise = {f: v for f, v in best.items() if v[0] >= ONSET_Z}
    if not beyond_noise:
        # Nothing moved past the control limit: the service ranked on what its callers saw (spans,
        # calls, events), which is what a slow or lossy network looks like from outside. The largest
        # sub-limit wiggle would be a coin toss (Online Boutique: a 1.8-sd CPU wiggle typed a CPU
        # hog right, a 0.9-sd node CPU wiggle typed a network delay wrong).
        return FaultType.LATENCY_NETWORK
    return max(beyond_noise.items(), key=lambda kv: kv[1][0])[0]

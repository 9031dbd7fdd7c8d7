"""The engine's fast paths give exactly what their plain definitions give.

Quantiles, the error-line test, the trace series, the span event counts and the handlers' request
sequences each have a faster implementation than the obvious one (numpy's percentile, a
case-insensitive regex, a loop per span). Each is checked here against that obvious definition,
bit for bit, on random and awkward inputs (signed zeros, duplicate span ids, missing parents,
non-ASCII text). The one exception is a logarithm: numpy's vectorised ``log`` (AVX-512 kernels where
the CPU has them) and the C library's ``math.log`` may round the last bit differently, so the event
rises are held to 1e-12 sd instead.
"""

from __future__ import annotations

import math
import random
import re
import struct
from collections import defaultdict

import numpy as np
import pytest

from opsagent.analysis import event_counts, event_onset, events, handlers, logs, span_counts, traces
from opsagent.analysis.scoring import median_of, percentiles
from opsagent.analysis.spantable import SpanTable
from opsagent.domain import Span


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _samples() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out: list[np.ndarray] = [np.array([-0.0]), np.array([0.0, -0.0]), np.array([-0.0, 0.0, -0.0, 0.0, 1.0])]
    for n in (1, 2, 3, 4, 5, 9, 10, 11, 37, 240):
        out.append(rng.normal(size=n))
        out.append(rng.choice([0.0, -0.0, 1.0], size=n))  # zeros of both signs tie in a sort
        out.append(rng.choice([0.0, -0.0, 1e-300, 3.5, 3.5, 1e12], size=n))
        out.append(np.round(rng.exponential(size=n) * 100, 1))
    with_nan = rng.normal(size=12)
    with_nan[3] = np.nan
    with_inf = rng.normal(size=12)
    with_inf[5] = np.inf
    return [*out, with_nan, with_inf]


@pytest.mark.parametrize("values", _samples())
def test_percentiles_match_numpy_bit_for_bit(values: np.ndarray) -> None:
    for percents in ((25, 50, 75, 95), (25, 75)):
        expected = [float(q) for q in np.percentile(values, list(percents))]
        got = percentiles(values, percents)
        assert [_bits(x) for x in got] == [_bits(x) for x in expected]
    assert _bits(median_of(values)) == _bits(float(np.median(values)))


def test_percentiles_leave_their_input_alone() -> None:
    values = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    percentiles(values, (25, 50, 75, 95))
    median_of(values)
    assert values.tolist() == [3.0, 1.0, 2.0, 5.0, 4.0]


def _is_error_by_regex(level: str, head: str) -> bool:
    """The error-line test as first written: the hint alternation, then the two patterns."""
    hint = re.compile("|".join(re.escape(word) for word in logs._ERROR_HINTS))
    if level.lower() in logs._ERROR_LEVELS:
        return True
    if not hint.search(head.lower()):
        return False
    return bool(logs._LEVEL_IN_TEXT.search(head[:200])) or bool(logs._ERROR_WORDS.search(head))


def test_error_lines_are_found_as_the_regexes_find_them() -> None:
    lines = [
        "GET /cart 200 in 3 ms",
        "Response(status=1, msg=Success, data=null)",
        "upstream answered status = 503",
        "upstream answered STATUS: 503",
        "rpc error: code = Unavailable desc = connection refused",
        "code=internal",
        "Timed Out waiting for lock",
        "java.lang.NullPointerException at Foo.bar(Foo.java:42)",
        "ERROR something went wrong",
        "Severe weather in the status report",
        "faıl: a dotless i is an i to a case-insensitive match",
        "ſtatus=500 (a long s is an s to one too)",
        "trace\u212aback with a Kelvin sign",
        "İNFO dotted capital I, then failed",
        "订单 error 处理失败",
        "tıme out of ſtatus",
    ]
    rng = random.Random(3)
    words = [*logs._ERROR_HINTS, "ok", "fine", "5", "=", " ", "ı", "ſ", "\u212a", "İ", "status=5", "0"]
    for _ in range(3000):
        lines.append("".join(rng.choice(words) for _ in range(rng.randint(1, 8))))
    for line in lines:
        for level in ("info", "warn", "ERROR"):
            assert logs.is_error_line(level, line) == _is_error_by_regex(level, line), line


def _random_spans(rng: random.Random, n: int) -> list[Span]:
    if rng.random() < 0.5:  # every id once, as in most recordings (the tables' shortcut for it)
        ids = [str(i) for i in rng.sample(range(n + 3), n)]
    else:  # repeated and empty ids
        ids = ["" if rng.random() < 0.03 else str(rng.randint(0, n + 3)) for _ in range(n)]
    return [
        Span(
            trace_id="t",
            span_id=ids[i],
            parent_id=rng.choice([None, "", str(rng.randint(0, n + 5)), ids[rng.randrange(n)]]),
            service=rng.choice("abcd"),
            operation=rng.choice(["get", "put", "handleError", "list"]),
            start=rng.uniform(-20.0, 100.0),
            duration_ms=rng.choice([rng.uniform(0.0, 100.0), 0.0, 5.0]),
            error=rng.random() < 0.3,
        )
        for i in range(n)
    ]


def _trace_series_by_loop(
    spans: list[Span], start: float, step: float
) -> tuple[list[tuple[str, str, list[float], list[float]]], set[tuple[str, str]]]:
    """Self times and error shares computed span by span, as the definition reads."""
    by_id = {s.span_id: s for s in spans}
    child_sum: dict[str, float] = defaultdict(float)
    child_count: dict[str, int] = defaultdict(int)
    child_service: dict[str, str] = {}
    child_error: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for s in spans:
        parent = by_id.get(s.parent_id) if s.parent_id else None
        if parent is None or not s.parent_id:
            continue
        child_sum[s.parent_id] += s.duration_ms
        child_count[s.parent_id] += 1
        child_service[s.parent_id] = s.service
        if s.error:
            child_error.add(s.parent_id)
        if parent.service != s.service:
            edges.add((parent.service, s.service))
    per_service: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    n_buckets = 0
    for s in spans:
        own = max(s.duration_ms - child_sum.get(s.span_id, 0.0), 0.0)
        service = s.service
        callee = child_service.get(s.span_id)
        parent = by_id.get(s.parent_id) if s.parent_id else None
        if (
            callee not in (None, s.service)
            and child_count[s.span_id] == 1
            and parent
            and parent.service == s.service
        ):
            service = callee
        b = int((s.start - start) // step)
        if b < 0:
            continue
        n_buckets = max(n_buckets, b + 1)
        per_service[service].append((b, own, 1.0 if s.error and s.span_id not in child_error else 0.0))
    out = []
    grid = start + step * np.arange(n_buckets, dtype=np.float64)
    for service, items in per_service.items():
        idx = np.array([b for b, _, _ in items], dtype=np.int64)
        count = np.bincount(idx, minlength=n_buckets).astype(np.float64)
        total = np.bincount(idx, weights=[o for _, o, _ in items], minlength=n_buckets)
        errs = np.bincount(idx, weights=[e for _, _, e in items], minlength=n_buckets)
        enough = count >= traces.MIN_SPANS_PER_BUCKET
        if enough.sum() >= traces.MIN_BUCKETS:
            out.append(
                (
                    service,
                    "trace_self_time_ms",
                    grid[enough].tolist(),
                    (total[enough] / count[enough]).tolist(),
                )
            )
            if errs.any():
                out.append(
                    (
                        service,
                        "trace_error_share",
                        grid[enough].tolist(),
                        (errs[enough] / count[enough]).tolist(),
                    )
                )
    return out, edges


def test_trace_series_match_the_span_by_span_definition() -> None:
    rng = random.Random(11)
    produced = 0
    for _ in range(300):
        spans = _random_spans(rng, rng.randint(1, 300))
        for step in (10.0, 30.0):
            series, edges = traces.trace_series(spans, 0.0, step)
            expected, expected_edges = _trace_series_by_loop(spans, 0.0, step)
            got = [(t.service, t.signal, t.timestamps.tolist(), t.values.tolist()) for t in series]
            assert got == expected
            assert edges == expected_edges
            produced += len(series)
    assert produced > 100  # the comparison covered series, not only empty results


def _count_spans_by_event(
    spans: list[Span], periods: event_counts.Periods, reference: list[Span]
) -> event_counts.Counts:
    """Span events counted one ``_Counts.add`` at a time (reference first), as the definition reads."""
    counts = event_counts.Counts()
    window_normal = {s.span_id for s in spans if periods.in_window_normal(s.start)}
    if any(periods.in_window_normal(s.start) for s in reference):
        reference = [s for s in reference if s.span_id not in window_normal]
    owner = {s.span_id: (s.service, s.operation) for s in spans}
    owner.update((s.span_id, (s.service, s.operation)) for s in reference)
    for is_ref, records in ((True, reference), (False, spans)):
        for s in records:
            normal = periods.side(s.start, is_ref)
            if normal is None:
                continue
            err_op = events.error_operation(s.operation)
            counts.add((s.service, "operation", s.operation), s.start, normal, err_op, "")
            parent = owner.get(s.parent_id) if s.parent_id else None
            caller = parent[0] if parent is not None else None
            if parent is not None and caller == s.service:
                counts.hosts[(s.service, "operation", s.operation)][(s.service, parent[1])] += 1
            if caller is not None and caller != s.service:
                counts.add((s.service, "call", f"{caller} -> {s.operation}"), s.start, normal, err_op, "")
            if s.error:
                counts.add((s.service, "error", s.operation), s.start, normal, True, "")
    return counts


def test_span_events_are_counted_as_one_add_per_event_would() -> None:
    rng = random.Random(5)
    for _ in range(200):
        spans = _random_spans(rng, rng.randint(0, 200))
        # a reference period partly inside the window's normal part, sharing some of its spans
        reference = _random_spans(rng, rng.randint(0, 40)) + rng.sample(spans, min(len(spans), 5))
        periods = event_counts.Periods(lo=0.0, split=rng.uniform(20.0, 80.0), hi=90.0)
        got = span_counts.count_spans(spans, periods, reference)
        expected = _count_spans_by_event(spans, periods, reference)
        assert dict(got.normal) == dict(expected.normal)
        assert dict(got.incident) == dict(expected.incident)
        assert got.first == expected.first
        assert got.errors == expected.errors
        assert {k: dict(v) for k, v in got.hosts.items()} == {k: dict(v) for k, v in expected.hosts.items()}


def test_span_events_of_a_window_alone_are_counted_as_one_add_per_event_would() -> None:
    # no reference: counted from the span table (kinds as integers), earliest times included; in
    # the same order as the kinds counted from the spans' owners
    rng = random.Random(9)
    for _ in range(300):
        spans = _random_spans(rng, rng.randint(1, 200))
        if rng.random() < 0.2:  # equal times and zeros of both signs: ties in the earliest times
            spans = [s.model_copy(update={"start": rng.choice([0.0, -0.0, 30.0, 85.0])}) for s in spans]
        periods = event_counts.Periods(lo=0.0, split=rng.uniform(20.0, 80.0), hi=90.0)
        got = span_counts.count_spans(spans, periods, [])
        expected = _count_spans_by_event(spans, periods, [])
        assert dict(got.normal) == dict(expected.normal)
        assert dict(got.incident) == dict(expected.incident)
        assert {k: _bits(v) for k, v in got.first.items()} == {k: _bits(v) for k, v in expected.first.items()}
        assert got.errors == expected.errors
        assert {k: dict(v) for k, v in got.hosts.items()} == {k: dict(v) for k, v in expected.hosts.items()}
        by_owners = event_counts.Counts()
        owner = span_counts.span_owners(spans)
        normal, incident = span_counts.sides(periods, [s.start for s in spans], False)
        span_counts._tally_spans(by_owners, [s for s, n in zip(spans, normal, strict=True) if n], owner, True)
        span_counts._tally_spans(
            by_owners, [s for s, i in zip(spans, incident, strict=True) if i], owner, False
        )
        assert list(got.normal.items()) == list(by_owners.normal.items())
        assert list(got.incident.items()) == list(by_owners.incident.items())
        assert [(k, _bits(v)) for k, v in got.first.items()] == [
            (k, _bits(v)) for k, v in by_owners.first.items()
        ]
        assert [(k, dict(v)) for k, v in got.hosts.items()] == [
            (k, dict(v)) for k, v in by_owners.hosts.items()
        ]


def _count_spans_by_kinds(
    spans: list[Span], periods: event_counts.Periods, reference: list[Span]
) -> event_counts.Counts:
    """Span events counted kind by kind from the spans' owners (``_tally_spans``), reference first:
    the counting that runs where a span table cannot (a span without a start time)."""
    counts = event_counts.Counts()
    held = event_counts.held_in_window(reference, spans, periods, lambda s: s.span_id, lambda s: s.start)
    reference = [s for s in reference if s.span_id not in held]
    owner = {**span_counts.span_owners(spans), **span_counts.span_owners(reference)}
    normal: list[Span] = []
    incident: list[Span] = []
    for is_ref, records in ((True, reference), (False, spans)):
        in_normal, in_incident = span_counts.sides(periods, [s.start for s in records], is_ref)
        normal += [s for s, n in zip(records, in_normal, strict=True) if n]
        incident += [s for s, i in zip(records, in_incident, strict=True) if i]
    span_counts._tally_spans(counts, normal, owner, True)
    span_counts._tally_spans(counts, incident, owner, False)
    return counts


def test_span_events_with_a_reference_are_counted_from_the_joined_table_in_the_same_order() -> None:
    rng = random.Random(13)
    for trial in range(300):
        spans = _random_spans(rng, rng.randint(1, 200))
        reference = _random_spans(rng, rng.randint(1, 60))
        if trial % 3 == 0:  # the reference shares some of the window's spans, some of them held
            reference += rng.sample(spans, min(len(spans), 5))
        if trial % 5 == 0:  # equal times and zeros of both signs: ties in the earliest times
            spans = [s.model_copy(update={"start": rng.choice([0.0, -0.0, 30.0, 85.0])}) for s in spans]
        periods = event_counts.Periods(lo=0.0, split=rng.uniform(20.0, 80.0), hi=90.0)
        expected = _count_spans_by_kinds(spans, periods, reference)
        owners = span_counts.span_owners(spans)
        for got in (
            span_counts.count_spans(spans, periods, reference),
            span_counts.count_spans(
                spans, periods, reference, (owners, {**owners, **span_counts.span_owners(reference)})
            ),
        ):
            assert list(got.normal.items()) == list(expected.normal.items())
            assert list(got.incident.items()) == list(expected.incident.items())
            assert [(k, _bits(v)) for k, v in got.first.items()] == [
                (k, _bits(v)) for k, v in expected.first.items()
            ]
            assert got.errors == expected.errors
            assert [(k, dict(v)) for k, v in got.hosts.items()] == [
                (k, dict(v)) for k, v in expected.hosts.items()
            ]


def test_period_masks_agree_with_the_periods() -> None:
    periods = event_counts.Periods(lo=10.0, split=20.0, hi=30.0)
    times = [-1.0, 10.0, 15.0, 20.0, 25.0, 30.0, 31.0, math.nan, math.inf, -math.inf]
    for reference in (True, False):
        normal, incident = span_counts.sides(periods, times, reference)
        sides = [periods.side(t, reference) for t in times]
        assert normal == [side is True for side in sides]
        assert incident == [side is False for side in sides]
    assert event_counts.in_window_normal(periods, times) == [periods.in_window_normal(t) for t in times]


def _handlers_by_loop(
    spans: list[Span], start: float, end: float, cut: float
) -> list[tuple[str, str, list[float], list[int], dict[tuple[str, str], list[bool]]]]:
    """``handlers._handlers`` by its definition: a dict of spans by id (the last occurrence of an
    id wins), one walk up the parents per failed span, one group per (service, operation)."""
    by_id = {s.span_id: s for s in spans}

    def parent_of(s: Span) -> Span | None:
        return by_id.get(s.parent_id) if s.parent_id else None

    children: dict[str, set[tuple[str, str]]] = defaultdict(set)
    parent_keys: set[tuple[str, str]] = set()
    for s in spans:
        p = parent_of(s)
        if p is not None and not events.error_operation(s.operation):
            children[p.span_id].add((s.service, s.operation))
            parent_keys.add((p.service, p.operation))
    marked: set[str] = set()
    for f in spans:
        if not (f.error or events.error_operation(f.operation)):
            continue
        seen: set[str] = set()
        p = parent_of(f)
        while p is not None and p.span_id not in seen:
            seen.add(p.span_id)
            if p.service != f.service:
                marked.add(p.span_id)
            p = parent_of(p)
    window_end = cut + handlers.CHANGE_WINDOW_SECONDS
    active = {(s.service, s.operation) for s in spans if cut <= s.start < window_end} & parent_keys
    groups: dict[tuple[str, str], list[Span]] = {}
    for s in spans:  # groups in order of their key's first appearance among all spans
        groups.setdefault((s.service, s.operation), [])
    for s in spans:
        key = (s.service, s.operation)
        if key in active and start <= s.start < end and s.span_id not in marked:
            groups[key].append(s)
    out = []
    for (service, operation), group in groups.items():
        if len(group) < handlers.MIN_BEFORE + handlers.MIN_AFTER:
            continue
        group = sorted(group, key=lambda s: s.start)
        steps = [children.get(s.span_id, set()) for s in group]
        took = {step: [step in st for st in steps] for step in sorted(set().union(*steps))}
        out.append((service, operation, [s.start for s in group], [len(st) for st in steps], took))
    return out


def test_handlers_match_the_span_by_span_definition() -> None:
    rng = random.Random(17)
    produced = 0
    for _ in range(200):
        spans = _random_spans(rng, rng.randint(0, 300))
        got = [
            (
                h.service,
                h.operation,
                h.starts.tolist(),
                h.sizes.tolist(),
                {k: v.tolist() for k, v in sorted(h.took.items())},
            )
            for h in handlers._handlers(spans, 0.0, 90.0, 30.0)
        ]
        assert got == _handlers_by_loop(spans, 0.0, 90.0, 30.0)
        produced += len(got)
    assert produced > 50  # the comparison covered handlers, not only empty results


def _walk_by_dict(
    span_id: str,
    service: str,
    spans: list[Span],
    failed: set[str],
    changed: event_counts.Changed,
    called: set[str],
) -> tuple[bool, str | None]:
    """The origin walk as first written: a dict of child lists keyed by parent id; ``called`` collects
    the other services it passes through."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        if s.parent_id:
            children[s.parent_id].append(s)
    if span_id not in by_id:
        return False, None
    best: tuple[int, str] | None = None
    stack = [(span_id, 0, service)]
    seen = {span_id}
    while stack:
        sid, depth, owner = stack.pop()
        for child in children.get(sid, ()):
            if child.span_id in seen:
                continue
            seen.add(child.span_id)
            hop = depth + (child.service != owner)
            if child.service != service:
                called.add(child.service)
                if child.span_id in failed:
                    return True, None
                if changed.holds(child.service, child.operation) and (best is None or hop > best[0]):
                    best = (hop, child.service)
            stack.append((child.span_id, hop, child.service))
    return False, best[1] if best else None


def _random_call_trees(rng: random.Random, n: int) -> list[Span]:
    """Spans in deep call trees, few failures, and repeated ids (a span recorded twice, or an id
    reused) whose occurrences differ in service and failure."""
    ids: list[str] = []
    spans = []
    repeats = 0.1 if rng.random() < 0.5 else 0.0
    for i in range(n):
        sid = ids[rng.randrange(len(ids))] if ids and rng.random() < repeats else str(i)
        parent = rng.choice([None, "", "missing", *ids[-6:]]) if ids else None
        ids.append(sid)
        spans.append(
            Span(
                trace_id="t",
                span_id=sid,
                parent_id=parent,
                service=rng.choice("abcde"),
                operation=rng.choice(["get", "put", "list", "list", "handleError"]),
                start=float(i),
                duration_ms=1.0,
                error=rng.random() < 0.04,
            )
        )
    return spans


def test_error_origins_walk_the_call_tree_as_a_dict_of_children_would() -> None:
    rng = random.Random(11)
    outcomes: set[tuple[bool, str | None]] = set()
    passed_through = 0
    for n in (1, 5, 40, 300, 300, 300, 300, 300):
        spans = _random_call_trees(rng, n)
        linked = [
            event_counts.ErrorLine(
                t=1.0,
                service=rng.choice("abcde"),
                span_id=rng.choice([s.span_id for s in spans] + ["missing", ""]),
                template="boom",
                normal=rng.random() < 0.5,
            )
            for _ in range(40)
        ]
        failed = {s.span_id for s in spans if s.error or events.error_operation(s.operation)}
        failed |= {line.span_id for line in linked[:3]}
        half = len(spans) // 2
        # the walk reads a window's table joined with a reference period's spans
        table = SpanTable.joined(SpanTable(spans[:half]), spans[half:])
        tree = event_counts._CallTree(table, linked[:3])
        changes = [event_counts.Changed(services=frozenset(names)) for names in ("", "b", "acd", "abcde")] + [
            event_counts.Changed(operations=frozenset(pairs))
            for pairs in ({("b", "get")}, {("a", "list"), ("c", "put"), ("d", "list")})
        ]
        for changed in changes:
            for line in linked:
                called_by_dict: set[str] = set()
                expected = _walk_by_dict(line.span_id, line.service, spans, failed, changed, called_by_dict)
                outcomes.add(expected)
                called: set[str] = set()
                assert tree.walk(line.span_id, line.service, changed, called) == expected, (n, line)
                assert called == called_by_dict, (n, line)
                passed_through += len(called)
    # the inputs reach every kind of verdict: an echo, a deeper origin, the line's own service
    assert (True, None) in outcomes and (False, None) in outcomes
    assert any(deepest is not None for _, deepest in outcomes)
    assert passed_through > 100  # the walks passed through other services, many times


def _rises_by_loop(
    everything: np.ndarray, times: np.ndarray, normal_start: float, candidates: np.ndarray, falls: bool
) -> tuple[list[float], list[float]]:
    """An event's rise at each candidate, one ``binomial_z`` call per candidate, the counts counted."""
    after = event_onset.AFTER_SECONDS
    total0 = [int(np.count_nonzero((everything >= normal_start) & (everything < c))) for c in candidates]
    total1 = [int(np.count_nonzero((everything >= c) & (everything < c + after))) for c in candidates]
    n0 = [int(np.count_nonzero((times >= normal_start) & (times < c))) for c in candidates]
    n1 = [int(np.count_nonzero((times >= c) & (times < c + after))) for c in candidates]
    z = [0.0] * candidates.size
    seen = [0.0] * candidates.size
    for i in range(candidates.size):
        t0, t1 = float(total0[i]), float(total1[i])
        if not (n0[i] if falls else n1[i]) or t0 <= 0 or t1 <= 0:
            continue
        p = (t1 + events.PRIOR) / (t0 + t1 + 2 * events.PRIOR)
        z[i] = events.binomial_z(float(n1[i]) + events.PRIOR, float(n0[i]) + events.PRIOR, p)
        if n1[i] > 0:
            seen[i] = float(times[times >= candidates[i]][0])  # its first occurrence from the candidate on
    return z, seen


# Each log may be a unit in the last place off the C library's. The statistic sums two terms of
# opposite sign, so near z = 0 the cancellation makes that a large relative difference; in absolute
# terms it stays near 1e-15 sd, while the thresholds the engine compares z with are whole sd.
LOG_ROUNDING_SD = 1e-12


def test_event_rises_match_one_binomial_test_per_candidate_to_the_last_bits() -> None:
    rng = np.random.default_rng(13)
    rising = falling = 0
    for trial in range(300):
        everything = np.sort(rng.uniform(0.0, 1200.0, size=int(rng.integers(0, 400))))
        # an event: a share of all events, kept mostly after a cut (a rise) or before it (a fall)
        share = everything[rng.random(everything.size) < rng.uniform(0.0, 0.6)]
        cut = rng.uniform(0.0, 1200.0)
        keep = (share < cut) ^ (rng.random(share.size) < (0.9 if trial % 2 else 0.1))
        times = np.sort(share[keep])
        candidates = np.arange(rng.uniform(100.0, 900.0), 1100.0, event_onset.CANDIDATE_SECONDS)
        normal_start = float(rng.uniform(0.0, 200.0))
        for falls in (False, True):
            z, seen = event_onset._rises(everything, times, normal_start, candidates, falls)
            z_loop, seen_loop = _rises_by_loop(everything, times, normal_start, candidates, falls)
            np.testing.assert_allclose(z, z_loop, rtol=LOG_ROUNDING_SD, atol=LOG_ROUNDING_SD)
            assert np.array_equal(np.signbit(z), np.signbit(np.array(z_loop)))
            assert seen.tolist() == seen_loop
            rising += int(np.count_nonzero(z > 0))
            falling += int(np.count_nonzero(z < 0))
    assert rising > 1000 and falling > 1000  # both directions measured, many times


def test_a_joined_span_table_is_the_table_of_the_joined_spans() -> None:
    rng = random.Random(5)
    for n in (0, 1, 40, 300):
        spans = _random_call_trees(rng, n) if n else []
        # a duplicate id across the two parts, and an empty id, as a recording may hold
        if n > 2:
            spans[-1] = spans[-1].model_copy(update={"span_id": spans[0].span_id})
            spans[1] = spans[1].model_copy(update={"span_id": ""})
        for cut in {0, n // 3, n}:
            joined = SpanTable.joined(SpanTable(spans[:cut]), spans[cut:])
            whole = SpanTable(spans)
            assert joined.n == whole.n and joined.ids == whole.ids and joined.index == whole.index
            assert joined.services == whole.services and joined.service_names == whole.service_names
            assert joined.operation_names == whole.operation_names
            for column in ("canon", "parent", "service", "duration", "start", "error"):
                assert getattr(joined, column).tolist() == getattr(whole, column).tolist(), (n, cut, column)

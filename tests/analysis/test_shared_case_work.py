"""Work shared between the engine's stages within a case gives what computing it again gives.

The log lines are masked once per list and reused by the next templating of the same records; the
spans' owners (each span id's service and operation) are built once for the log counts and the span
counts; the event onset reads the spans from the span table prepare built. Each is checked against
the plain computation.
"""

from __future__ import annotations

import random

import pytest

from opsagent.analysis import event_counts, event_onset, events, logs, span_counts
from opsagent.analysis.spantable import SpanTable
from opsagent.domain import LogRecord, Span

_WORDS = ["GET", "POST", "order", "failed", "ok", "user", "timeout", "cache", "miss", "Error:", "done"]


def _lines(rng: random.Random, n: int) -> list[LogRecord]:
    out = []
    for i in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words) + 1), f"id={rng.randint(0, 50)}")
        out.append(
            LogRecord(
                timestamp=float(i),
                service=rng.choice("ab"),
                level=rng.choice(["info", "info", "error"]),
                message=" ".join(words),
            )
        )
    return out


def test_templates_of_parts_are_those_of_the_joined_list() -> None:
    rng = random.Random(3)
    for _ in range(60):
        reference, window = _lines(rng, rng.randint(0, 40)), _lines(rng, rng.randint(0, 80))
        expected = logs.line_templates([*reference, *window])
        # the window alone first, as the event onset does: its masking is then reused
        alone = logs.line_templates(window)
        assert logs.line_templates(reference, window) == expected
        assert logs.line_templates(window) == alone == logs.line_templates([*window])


def _uncached(records: list[LogRecord], monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    # the templating with the masking cache emptied: what a stale cache would not give
    with monkeypatch.context() as patch:
        patch.setattr(logs, "_recent", ())
        return logs.line_templates(list(records))


def test_a_list_changed_in_place_is_masked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    window = _lines(rng, 30)
    logs.line_templates(window)
    window[0] = LogRecord(timestamp=0.0, service="a", message="something else entirely 42")
    assert logs.line_templates(window) == _uncached(window, monkeypatch)
    window.reverse()
    assert logs.line_templates(window) == _uncached(window, monkeypatch)


def _spans(rng: random.Random, n: int) -> list[Span]:
    ids = ["" if rng.random() < 0.05 else str(rng.randint(0, n + 3)) for _ in range(n)]
    return [
        Span(
            trace_id="t",
            span_id=ids[i],
            parent_id=rng.choice([None, "", str(rng.randint(0, n + 5)), ids[rng.randrange(n)]]),
            service=rng.choice("abc"),
            operation=rng.choice(["get", "put", "handleError"]),
            start=rng.uniform(-20.0, 100.0),
            duration_ms=1.0,
            error=rng.random() < 0.3,
        )
        for i in range(n)
    ]


def test_span_owners_are_the_last_span_per_id() -> None:
    rng = random.Random(5)
    for _ in range(50):
        spans = _spans(rng, rng.randint(0, 60))
        assert span_counts.span_owners(spans) == {s.span_id: (s.service, s.operation) for s in spans}


def test_span_counts_with_owners_given_are_those_without() -> None:
    rng = random.Random(6)
    for _ in range(100):
        spans = _spans(rng, rng.randint(0, 80))
        reference = _spans(rng, rng.randint(0, 20)) + rng.sample(spans, min(len(spans), 4))
        periods = event_counts.Periods(lo=0.0, split=rng.uniform(20.0, 80.0), hi=90.0)
        owners = span_counts.span_owners(spans)
        all_owners = {**owners, **span_counts.span_owners(reference)}
        given = span_counts.count_spans(spans, periods, reference, (owners, all_owners))
        built = span_counts.count_spans(spans, periods, reference)
        # left as they were
        assert owners == span_counts.span_owners(spans)
        assert all_owners == {s.span_id: (s.service, s.operation) for s in [*spans, *reference]}
        assert dict(given.normal) == dict(built.normal)
        assert dict(given.incident) == dict(built.incident)
        assert given.first == built.first
        assert given.errors == built.errors
        assert {k: dict(v) for k, v in given.hosts.items()} == {k: dict(v) for k, v in built.hosts.items()}


def _events_by_loop(
    lines: list[LogRecord], spans: list[Span]
) -> tuple[list[float], dict[str, list[float]], dict[str, list[float]]]:
    """The event onset's events by their definition: one step per line and per span (a service's
    events, for its statements' shares, are those that are not errors)."""
    times: list[float] = []
    errors: dict[str, list[float]] = {}
    by_service: dict[str, list[float]] = {}
    for rec, (template, error) in zip(lines, logs.line_templates(lines), strict=True):
        times.append(rec.timestamp)
        if error:
            errors.setdefault(f"{rec.service}\x00log\x00{template}", []).append(rec.timestamp)
        else:
            by_service.setdefault(rec.service, []).append(rec.timestamp)
    for span in spans:
        times.append(span.start)
        if span.error or events.error_operation(span.operation):
            errors.setdefault(f"{span.service}\x00span\x00{span.operation}", []).append(span.start)
        else:
            by_service.setdefault(span.service, []).append(span.start)
    return (
        sorted(times),
        {k: sorted(v) for k, v in errors.items()},
        {k: sorted(v) for k, v in by_service.items()},
    )


def test_event_onset_events_from_the_span_table_are_those_of_a_loop() -> None:
    rng = random.Random(8)
    for _ in range(80):
        lines, spans = _lines(rng, rng.randint(0, 30)), _spans(rng, rng.randint(0, 120))
        if rng.random() < 0.5:
            SpanTable.of(spans)  # as prepare leaves it
        got = event_onset._events(lines, spans)
        everything, errors, by_service = _events_by_loop(lines, spans)
        assert got.everything.tolist() == everything
        # the same events in the same order (the first of equally strong rises wins)
        assert list(got.errors) == list(errors)
        assert {k: v.tolist() for k, v in got.errors.items()} == errors
        assert list(got.by_service) == list(by_service)
        assert {k: v.tolist() for k, v in got.by_service.items()} == by_service

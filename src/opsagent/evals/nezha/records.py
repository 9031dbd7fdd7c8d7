"""A window's log lines and spans from the day's minute files, and the day's reference records.

The days are large (hundreds of MB of logs and traces): only the minute files that overlap a window
are read, and parsed files are kept per process, since neighbouring cases share them. Each parsed
file keeps its records' times as an array, so picking a window's records (its bounds, minus the
minutes after earlier faults) is a few array comparisons per file rather than a test per record.

Reference period: where the dataset holds a fault-free recording of the same day
(``construct_data/<day>/log`` and ``trace``), its logs and spans are added to every case of that day,
and the minutes they span are the incident's ``reference``.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from opsagent.domain import LogRecord, Span, TimeWindow
from opsagent.evals.cases import utc
from opsagent.evals.nezha.layout import reference_day
from opsagent.evals.nezha.logs import read_log_file
from opsagent.evals.nezha.traces import read_trace_file

FLOATS = npt.NDArray[np.float64]
R = TypeVar("R", LogRecord, Span)
# Parsed minute files kept per process, at most this many records (spans or log lines, about
# 1 kB each in memory): more than the files of one window hold (an Online Boutique trace file
# holds ~25k spans, a window overlaps up to ~15 files), so a window's files all stay cached.
_CACHE_RECORDS = 450_000
_log_time = attrgetter("timestamp")
_span_time = attrgetter("start")


@dataclass(frozen=True)
class Timed(Generic[R]):
    """Records and their times, index for index."""

    records: Sequence[R]
    times: FLOATS

    @staticmethod
    def of(records: Sequence[R], time: Callable[[R], float]) -> Timed[R]:
        return Timed(records, np.fromiter(map(time, records), dtype=np.float64, count=len(records)))

    def __len__(self) -> int:
        return len(self.records)


class _FileCache:
    """Parsed files, least recently used dropped first beyond a budget of records."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._items: OrderedDict[str, Timed[LogRecord] | Timed[Span]] = OrderedDict()
        self._size = 0

    def get(self, key: str, parse: Callable[[str], Timed[R]]) -> Timed[R]:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit  # type: ignore[return-value]  # one parser per file kind, keyed by its path
        value = parse(key)
        self._items[key] = value
        self._size += len(value)
        while self._size > self._budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)
        return value

    def retain(self, keys: set[str]) -> None:
        """Drop every entry not in ``keys``."""
        for key in [k for k in self._items if k not in keys]:
            self._size -= len(self._items.pop(key))

    def clear(self) -> None:
        self._items.clear()
        self._size = 0


_cache = _FileCache(_CACHE_RECORDS)


def _logs_of(path_text: str) -> Timed[LogRecord]:
    return Timed.of(read_log_file(path_text), _log_time)


def _spans_of(path_text: str) -> Timed[Span]:
    return Timed.of(read_trace_file(path_text), _span_time)


def _in_window(times: FLOATS, start: float, end: float, excluded: list[tuple[float, float]]) -> list[bool]:
    """Whether each time is in [start, end] and outside every [from, to) of ``excluded``."""
    keep = (times >= start) & (times <= end)
    for lo, hi in excluded:
        keep &= ~((times >= lo) & (times < hi))
    flags: list[bool] = keep.tolist()
    return flags


def _window(
    files: list[str],
    parse: Callable[[str], Timed[R]],
    start: float,
    end: float,
    excluded: list[tuple[float, float]],
) -> Timed[R]:
    """The records of ``files`` (in file order, each file in its own order) inside the window."""
    records: list[R] = []
    times: list[FLOATS] = []
    for path in files:
        part = _cache.get(path, parse)
        flags = _in_window(part.times, start, end, excluded)
        records.extend(compress(part.records, flags))
        times.append(part.times[np.asarray(flags, dtype=bool)])
    return Timed(records, np.concatenate(times) if times else np.empty(0, dtype=np.float64))


def window_records(
    trace_files: list[str],
    log_files: list[str],
    start: float,
    end: float,
    excluded: list[tuple[float, float]],
) -> tuple[Timed[LogRecord], Timed[Span]]:
    """The window's log lines and spans, from the cached minute files."""
    # Cases are loaded in time order, so files before this window will not be needed again:
    # the cache holds about one window's files, not the whole day.
    _cache.retain({*trace_files, *log_files})
    spans = _window(trace_files, _spans_of, start, end, excluded)
    logs = _window(log_files, _logs_of, start, end, excluded)
    return logs, spans


@dataclass(frozen=True)
class Reference:
    """The day's fault-free records (logs in time order) and the whole seconds they span."""

    logs: Timed[LogRecord]
    spans: Timed[Span]
    window: TimeWindow | None


@functools.lru_cache(maxsize=2)
def reference(day_text: str) -> Reference:
    """The fault-free logs and spans recorded for the day (empty when the dataset has none)."""
    folder = reference_day(Path(day_text))
    if folder is None:
        return Reference(Timed.of([], _log_time), Timed.of([], _span_time), None)
    logs = [r for p in sorted((folder / "log").glob("*_log.csv")) for r in read_log_file(str(p))]
    spans = [s for p in sorted((folder / "trace").glob("*_trace.csv")) for s in read_trace_file(str(p))]
    logs.sort(key=_log_time)
    return Reference(
        Timed.of(tuple(logs), _log_time), Timed.of(tuple(spans), _span_time), _span_of(logs, spans)
    )


def _span_of(logs: list[LogRecord], spans: list[Span]) -> TimeWindow | None:
    stamps = [r.timestamp for r in logs] + [s.start for s in spans]
    if not stamps or max(stamps) <= min(stamps):
        return None
    # whole seconds outwards: the records are stamped in nanoseconds, a datetime holds microseconds
    return TimeWindow(start=utc(math.floor(min(stamps))), end=utc(math.ceil(max(stamps))))


def _new(
    window: Timed[R], ref: Timed[R], lo: float, hi: float, identity: Callable[[R], object]
) -> tuple[list[R], FLOATS]:
    """The reference records the window does not hold already (only window records inside the
    reference's minutes can be one of them), with their times."""
    overlap = (window.times >= lo) & (window.times <= hi)
    if not overlap.any():
        return list(ref.records), ref.times
    seen = {identity(r) for r in compress(window.records, overlap.tolist())}
    fresh = [identity(r) not in seen for r in ref.records]
    return list(compress(ref.records, fresh)), ref.times[np.asarray(fresh, dtype=bool)]


def _log_identity(record: LogRecord) -> object:
    return (record.timestamp, record.service, record.message)


def with_reference(
    logs: Timed[LogRecord], spans: Timed[Span], ref: Reference
) -> tuple[list[LogRecord], list[Span]]:
    """The window's records and the reference's (each record once), logs in time order.

    The reference's records keep their own times: the replayed sources serve them for the reference
    window (and, where it overlaps the case's window, as the ordinary records they are).
    """
    lo, hi = (ref.window.start_s, ref.window.end_s) if ref.window is not None else (math.inf, -math.inf)
    more_logs, more_log_times = _new(logs, ref.logs, lo, hi, _log_identity)
    more_spans, _ = _new(spans, ref.spans, lo, hi, attrgetter("span_id"))
    all_logs = [*logs.records, *more_logs]
    # a stable sort by time, as list.sort(key=timestamp) would give, on the times already at hand
    order = np.argsort(np.concatenate([logs.times, more_log_times]), kind="stable").tolist()
    return [all_logs[i] for i in order], [*spans.records, *more_spans]


def clear() -> None:
    """Forget every parsed file (a file changed on disk under the same name)."""
    _cache.clear()
    reference.cache_clear()

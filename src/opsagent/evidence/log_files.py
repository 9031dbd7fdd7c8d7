"""Live logs from JSON Lines files under a folder (``OPSAGENT_LOGS_DIR``): the window's lines only.

A service's log file grows for as long as it runs, and every investigation wants only its own
window of it. Log files are appended in time order, so each file is entered by a binary search on
byte offsets for the window's start (less a slack for lines written slightly out of order) and read
until the window has passed: an investigation reads a few pages per file however large it is.

A line that is not a JSON object with a readable timestamp is skipped and counted; the count is a
gap. A file made mostly of such lines is not this format: it is left out, with a gap saying so.
The source fails only when no file could be read. The line format is in docs/FORMATS.md.
"""

from __future__ import annotations

import heapq
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from opsagent.config import FileLogSettings
from opsagent.domain import EvidenceGap, Incident, LogRecord
from opsagent.errors import LogSourceError
from opsagent.evidence.base import Collected

# Below this many bytes between the search's bounds, reading lines is cheaper than halving again.
_SEARCH_BLOCK = 64 * 1024
# How far a probe of the binary search reads for a line with a timestamp before giving up on it.
_PROBE_LINES = 50
# A single line longer than this is cut (a stack trace on one line is kept; a runaway blob is not).
_MAX_LINE_BYTES = 64 * 1024
_TIME_KEYS = ("timestamp", "time", "ts")
_MESSAGE_KEYS = ("message", "msg", "log")


class BadLineError(ValueError):
    """A line that is not a log record of this format (the reason is the message)."""


def parse_time(value: Any) -> float:
    """Epoch seconds (number or numeric string) or an ISO 8601 / RFC 3339 time (naive = UTC)."""
    if isinstance(value, bool):
        raise BadLineError("timestamp is a boolean")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadLineError(f"unreadable timestamp {text[:40]!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """The line's JSON object; ``None`` for a blank line; ``BadLineError`` for anything else."""
    text = raw[:_MAX_LINE_BYTES].decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadLineError(f"not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise BadLineError("not a JSON object")
    return row


def time_of(row: dict[str, Any]) -> float:
    for key in _TIME_KEYS:
        if key in row:
            return parse_time(row[key])
    raise BadLineError("no timestamp field")


def record_of(row: dict[str, Any], stamp: float, default_service: str) -> LogRecord:
    message = next((row[k] for k in _MESSAGE_KEYS if isinstance(row.get(k), str)), None)
    if message is None:
        message = json.dumps({k: v for k, v in row.items() if k not in _TIME_KEYS}, default=str)[:2_000]
    trace = row.get("trace_id")
    span = row.get("span_id")
    return LogRecord(
        timestamp=stamp,
        service=str(row.get("service") or default_service),
        level=str(row.get("level") or row.get("severity") or "info").lower(),
        message=message,
        trace_id=str(trace) if trace else None,
        span_id=str(span) if span else None,
    )


def _first_time_after(fh: IO[bytes], offset: int, limit: int) -> float | None:
    """The timestamp of the first whole line starting after ``offset`` (and before ``limit``)."""
    fh.seek(offset)
    if offset:
        fh.readline()  # the rest of a line that began before offset
    for _ in range(_PROBE_LINES):
        if fh.tell() >= limit:
            return None
        raw = fh.readline()
        if not raw:
            return None
        try:
            row = parse_line(raw)
            if row is not None:
                return time_of(row)
        except BadLineError:
            continue
    return None


def start_offset(fh: IO[bytes], size: int, target: float) -> int:
    """A line start before every line stamped ``target`` or later, found by halving byte ranges.

    Correct for a file in time order; for one that is not, lines out of order by more than the
    caller's slack may be missed, never lines in order.
    """
    lo, hi = 0, size
    while hi - lo > _SEARCH_BLOCK:
        mid = (lo + hi) // 2
        stamp = _first_time_after(fh, mid, hi)
        if stamp is None or stamp >= target:
            hi = mid
        else:
            lo = mid
    if lo == 0:
        return 0
    fh.seek(lo)
    fh.readline()
    return fh.tell()


@dataclass
class FileRead:
    """What reading one file's window gave: records (the latest ``limit``), counts, where it went wrong."""

    records: list[LogRecord]
    in_window: int
    good: int
    bad: int
    bytes_read: int
    first_bad: str = ""


def read_window(path: Path, lo: float, hi: float, *, slack: float, limit: int) -> FileRead:
    """The records of ``path`` stamped within [lo, hi]: read from the search's offset until past hi."""
    kept: list[tuple[float, int, LogRecord]] = []
    in_window = good = bad = 0
    first_bad = ""
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = start_offset(fh, size, lo - slack)
        fh.seek(offset)
        position = offset
        for raw in fh:
            at = position
            position += len(raw)
            try:
                row = parse_line(raw)
                if row is None:
                    continue
                stamp = time_of(row)
            except BadLineError as exc:
                bad += 1
                first_bad = first_bad or f"{path.name} byte {at}: {exc}"
                continue
            good += 1
            if stamp > hi + slack:
                break
            if not lo <= stamp <= hi:
                continue
            in_window += 1
            item = (stamp, in_window, record_of(row, stamp, path.stem))
            # The latest ``limit`` lines: a bounded heap, so a chatty window costs no more memory.
            if len(kept) < limit:
                heapq.heappush(kept, item)
            else:
                heapq.heappushpop(kept, item)
    return FileRead(
        records=[r for _, _, r in kept],
        in_window=in_window,
        good=good,
        bad=bad,
        bytes_read=position - offset,
        first_bad=first_bad,
    )


class FileLogSource:
    """Evidence source: the incident window's lines of the JSON Lines files under a folder."""

    name = "logs"

    def __init__(self, directory: Path, settings: FileLogSettings | None = None) -> None:
        self._dir = Path(directory)
        self._settings = settings or FileLogSettings()
        # Bytes read by the last collect(), per file: what a test (or a curious operator) checks to
        # see that the window, not the file, was read.
        self.last_bytes_read: dict[Path, int] = {}

    def collect(self, incident: Incident) -> Collected:
        if not self._dir.is_dir():
            raise LogSourceError(f"log folder {self._dir} does not exist")
        settings = self._settings
        lo, hi = incident.window.start_s, incident.window.end_s
        paths = sorted(p for p in self._dir.rglob(settings.pattern) if p.is_file())
        if not paths:
            raise LogSourceError(f"no {settings.pattern} files under the log folder {self._dir}")
        records: list[LogRecord] = []
        gaps: list[EvidenceGap] = []
        total = bad = unreadable = 0
        bad_example = ""
        self.last_bytes_read = {}
        for path in paths:
            try:
                part = read_window(path, lo, hi, slack=settings.order_slack_seconds, limit=settings.limit)
            except OSError as exc:
                unreadable += 1
                gaps.append(EvidenceGap(source="logs", reason=f"{path}: cannot read ({exc.strerror or exc})"))
                continue
            self.last_bytes_read[path] = part.bytes_read
            share = part.bad / max(part.bad + part.good, 1)
            if part.bad and share > settings.max_bad_share:
                unreadable += 1
                gaps.append(
                    EvidenceGap(
                        source="logs",
                        reason=f"{path}: left out, {part.bad} of {part.bad + part.good} lines read are "
                        f"not log records of the JSON Lines format (first: {part.first_bad}); "
                        "see docs/FORMATS.md",
                    )
                )
                continue
            records.extend(part.records)
            total += part.in_window
            bad += part.bad
            bad_example = bad_example or part.first_bad
        if unreadable == len(paths):
            raise LogSourceError(f"no log file under {self._dir} could be read: {gaps[0].reason}")
        if bad:
            gaps.append(
                EvidenceGap(source="logs", reason=f"{bad} malformed log lines skipped (first: {bad_example})")
            )
        records.sort(key=lambda r: r.timestamp)
        if total > len(records) or len(records) > settings.limit:
            records = records[-settings.limit :]
            gaps.append(
                EvidenceGap(
                    source="logs",
                    reason=f"{total} log lines in the window, kept the last {len(records)} "
                    "(OPSAGENT_FILE_LOGS__LIMIT)",
                )
            )
        return Collected(logs=records, gaps=gaps)

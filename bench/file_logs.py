"""How much of a long log file one investigation reads (the file log source, ``evidence/log_files.py``).

    python -m bench file_logs

Writes a day of one service's JSON lines (10 a second, ~90 MB) into a temporary folder, then asks
the file source for a live investigation's window (the last 10 minutes, 30 minutes of lookahead)
and prints the lines found, the bytes read, their share of the file, and the time taken.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from opsagent.config import FileLogSettings
from opsagent.domain import Incident, TimeWindow
from opsagent.evidence.log_files import FileLogSource

LINES_PER_SECOND = 10
DAY_SECONDS = 86_400
WINDOW_MINUTES = 10


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-file-logs-") as tmp:
        folder = Path(tmp)
        now = time.time()
        path = folder / "orders.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for i in range(DAY_SECONDS * LINES_PER_SECOND):
                row = {
                    "timestamp": now - DAY_SECONDS + i / LINES_PER_SECOND,
                    "service": "orders",
                    "level": "info",
                    "message": f"served request {i}",
                }
                fh.write(json.dumps(row) + "\n")
        size = path.stat().st_size
        alert = datetime.fromtimestamp(now, UTC)
        window = TimeWindow(
            start=alert - timedelta(minutes=WINDOW_MINUTES), end=alert + timedelta(minutes=30)
        )
        incident = Incident(id="bench", title="bench", window=window, alert_time=alert)
        source = FileLogSource(folder, FileLogSettings())
        started = time.perf_counter()
        got = source.collect(incident)
        seconds = time.perf_counter() - started
        read = sum(source.last_bytes_read.values())
        expected = WINDOW_MINUTES * 60 * LINES_PER_SECOND
        print(
            f"file {size / 1e6:.1f} MB; {len(got.logs)} lines in the window (of {expected}); "
            f"read {read / 1e6:.2f} MB ({100 * read / size:.1f} % of the file) in {seconds:.2f} s"
        )
        return 0 if abs(len(got.logs) - expected) <= LINES_PER_SECOND else 1


if __name__ == "__main__":
    raise SystemExit(main())

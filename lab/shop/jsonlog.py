"""JSON-lines logs to files, one file per service and hour, in opsagent's native log format.

Each line is ``{"timestamp": epoch s, "service", "level", "message", ...}``: what opsagent's file log
source (``OPSAGENT_LOGS_DIR``) reads. Hourly files keep every read short, and files older than
``keep_hours`` are deleted when a new hour starts, so a long-running lab does not fill the disk.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO


class JsonLog:
    def __init__(self, folder: Path, service: str, *, keep_hours: int = 3) -> None:
        self._folder = folder / service
        self._folder.mkdir(parents=True, exist_ok=True)
        self._service = service
        self._keep = keep_hours
        self._lock = threading.Lock()
        self._hour = ""
        self._fh: TextIO | None = None

    def _file(self, now: float) -> TextIO:
        hour = time.strftime("%Y%m%d%H", time.gmtime(now))
        if hour != self._hour or self._fh is None:
            if self._fh is not None:
                self._fh.close()
            self._hour = hour
            self._fh = (self._folder / f"{hour}.jsonl").open("a", encoding="utf-8", buffering=1)
            self._prune(now)
        return self._fh

    def _prune(self, now: float) -> None:
        cutoff = time.strftime("%Y%m%d%H", time.gmtime(now - self._keep * 3600))
        for path in self._folder.glob("*.jsonl"):
            if path.stem < cutoff:
                path.unlink(missing_ok=True)

    def log(self, level: str, message: str, **fields: Any) -> None:
        now = time.time()
        line = json.dumps(
            {
                "timestamp": round(now, 3),
                "service": self._service,
                "level": level,
                "message": message,
                **fields,
            }
        )
        with self._lock:
            self._file(now).write(line + "\n")

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)

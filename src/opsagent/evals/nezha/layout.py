"""Where a Nezha day's files are: the days under a path, which system a day recorded, the minute files
that can hold a window's records, and the day's fault-free reference folder.

Layout of one day: ``rca_data/<day>/<day>-fault_list.json`` (per hour, faults injected one after
another), ``metric/<pod>_metric.csv`` (one row per minute), ``log/HH_MM_log.csv`` and
``trace/HH_MM_trace.csv`` (one file per minute, only around faults), and for Online Boutique
``metric/dependency.csv`` (call-graph edges). ``construct_data/<day>`` beside ``rca_data`` holds the
minutes Nezha itself learns normal patterns from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

METRIC_SUFFIX = "_metric.csv"


def service_of(pod: str) -> str:
    """``ts-order-service-5b67c48447-mv5hb`` → ``ts-order-service``."""
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else pod


def fault_list(day: Path) -> Path:
    return day / f"{day.name}-fault_list.json"


def is_day(path: Path) -> bool:
    return fault_list(path).is_file() and (path / "metric").is_dir()


def days(path: Path) -> list[Path]:
    """The days at ``path``: the path itself, or the days in it or in its ``rca_data``."""
    if is_day(path):
        return [path]
    for base in (path, path / "rca_data"):
        if base.is_dir():
            found = sorted(p for p in base.iterdir() if p.is_dir() and is_day(p))
            if found:
                return found
    return []


def system(day: Path) -> str:
    """The dataset a day belongs to: ``nezha-tt`` (Train Ticket's ``ts-`` pods) or ``nezha-ob``."""
    pods = [p.name for p in (day / "metric").glob(f"*{METRIC_SUFFIX}")]
    return "nezha-tt" if any(p.startswith("ts-") for p in pods) else "nezha-ob"


def minute_files(folder: Path, suffix: str, start: float, end: float) -> list[Path]:
    """Minute files (``HH_MM<suffix>``) that can hold records between start and end."""
    if not folder.is_dir():
        return []
    day = datetime.strptime(folder.parent.name, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    out: list[Path] = []
    for path in sorted(folder.glob(f"*{suffix}")):
        stem = path.name[: -len(suffix)]
        try:
            hh, mm = (int(x) for x in stem.split("_"))
        except ValueError:
            continue
        minute = day + hh * 3600 + mm * 60
        # Files hold some records from the minute before their name; allow a minute each side.
        if minute + 120 >= start and minute - 120 <= end:
            out.append(path)
    return out


def reference_day(day: Path) -> Path | None:
    """``construct_data/<day>`` next to the ``rca_data`` folder holding ``day``, if it has events."""
    folder = day.parent.parent / "construct_data" / day.name
    if any((folder / kind).is_dir() for kind in ("log", "trace")):
        return folder
    return None

"""Importer for the Nezha dataset (IntelligentDDS/Nezha, FSE 2023): Online Boutique and Train Ticket.

Layout of one day: ``rca_data/<day>/<day>-fault_list.json`` (per hour, faults injected one after
another), ``metric/<pod>_metric.csv`` (one row per minute), ``log/HH_MM_log.csv`` and
``trace/HH_MM_trace.csv`` (one file per minute, only around faults), and for Online Boutique
``metric/dependency.csv`` (call-graph edges).

How a case is built:

* One case per injected fault. ``inject_time`` is read as UTC (it matches the metric, log and trace
  epochs); ``inject_timestamp`` is ignored because it is 8 hours off on some days. The injection
  is ``alert_time``.
* The window runs from ``LOOKBACK`` before the injection (or the first metric row) to
  ``LOOKAHEAD`` after it, and always stops before the next injection: faults follow each other
  about every 8 minutes and a window that reached the next one would mix two incidents.
* Earlier faults inside the lookback (up to three) are not normal either: the minutes from each
  earlier injection to ``RECOVERY_MARGIN`` after it are left out of the case (metrics, logs and
  spans), so the normal period is the quiet stretches between faults and what precedes the current
  one; the gaps stay gaps, as a live system's history would show missing samples. Cutting the
  window to start after the previous fault instead would leave ~2 one-minute samples of history,
  too few for a robust baseline. The first fault of a day keeps whatever precedes it (about 2
  minutes on 2023-01-29).
* A pod's service is its name without the last two ``-`` segments (the ReplicaSet hash and the
  pod suffix); metrics, logs and spans are attributed to services.
* Call graph: Online Boutique from ``dependency.csv``; Train Ticket from the window's spans
  (the parent span's service calls the child span's service).
* Reference period: where the dataset holds a fault-free recording of the same day
  (``construct_data/<day>/log`` and ``trace``, the minutes Nezha itself learns normal patterns from),
  its logs and spans are added to every case of that day and the minutes they span become the
  incident's ``reference``. The minutes before an injection are mostly earlier faults (logs and
  traces exist only around injections), so this is the only normal event data the day has.
  Metrics are the same files in both folders and are not read twice.
* The days are large (hundreds of MB of logs and traces): only the minute files that overlap the
  window are read, and parsed files are cached per process, since neighbouring cases share them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from opsagent.domain import (
    Edge,
    FaultType,
    GroundTruth,
    Incident,
    LogRecord,
    MetricSeries,
    RecordedIncident,
    Span,
    TimeWindow,
    Topology,
)
from opsagent.domain.signals import classify_signal, unit_of
from opsagent.errors import IncidentFormatError
from opsagent.evals.cases import CaseRef, opaque_incident_id, utc
from opsagent.evals.tables import numeric_table, rows

FORMAT = "nezha"
LOOKBACK = timedelta(minutes=30)
LOOKAHEAD = timedelta(minutes=10)
# The window ends this long before the next injection. (Injections show first effects up to ~90 s
# before the recorded inject_time; ending the window 2 min early was measured and cost more than it
# gained: Online Boutique AC@1 0.79 -> 0.71, Train Ticket unchanged.)
NEXT_FAULT_MARGIN = timedelta(seconds=1)
# How long after its injection an earlier fault is left out. Measured on the development days: the
# injected service's own CPU (CPU faults) or latency stays elevated for 3 to 7 one-minute samples
# after an injection, most often 4-5. 3 minutes (the shortest) removes every fault's onset and
# peak; longer margins remove the tails too but leave only 1-2 samples of each ~7-minute gap between
# faults, and a baseline of a handful of points lets ordinary wobbles of noisy series score as
# anomalies (measured on the development split: 4-6 minutes cost Train Ticket AC@3 0.36 -> ~0.2,
# 3 minutes cost nothing on either system).
RECOVERY_MARGIN = timedelta(minutes=3)
# Parsed minute files kept per process, at most this many records (spans or log lines, about
# 1 kB each in memory): more than the files of one window hold (an Online Boutique trace file
# holds ~25k spans, a window overlaps up to ~15 files), so a window's files all stay cached.
_CACHE_RECORDS = 450_000

FAULT_TYPES: dict[str, FaultType] = {
    "cpu_contention": FaultType.CPU,
    "cpu_consumed": FaultType.CPU,
    "network_delay": FaultType.LATENCY_NETWORK,
    "return": FaultType.ERRORS_CODE,
    "exception": FaultType.ERRORS_CODE,
}

# Dataset column → signal name in our naming (kind and unit readable from the name).
_SIGNALS: dict[str, str] = {
    "CpuUsage(m)": "cpu_usage_millicores",
    "CpuUsageRate(%)": "cpu_utilisation_percent",
    "MemoryUsage(Mi)": "memory_mebibytes",
    "MemoryUsageRate(%)": "memory_utilisation_percent",
    "SyscallRead": "syscall_read",
    "SyscallWrite": "syscall_write",
    "NetworkReceiveBytes": "network_receive_bytes",
    "NetworkTransmitBytes": "network_transmit_bytes",
    "PodClientLatencyP90(s)": "client_latency_p90_seconds",
    "PodServerLatencyP90(s)": "server_latency_p90_seconds",
    "PodClientLatencyP95(s)": "client_latency_p95_seconds",
    "PodServerLatencyP95(s)": "server_latency_p95_seconds",
    "PodClientLatencyP99(s)": "client_latency_p99_seconds",
    "PodServerLatencyP99(s)": "server_latency_p99_seconds",
    "PodWorkload(Ops)": "workload_ops",
    "PodSuccessRate(%)": "success_rate_percent",
    "NodeCpuUsageRate(%)": "node_cpu_utilisation_percent",
    "NodeMemoryUsageRate(%)": "node_memory_utilisation_percent",
    "NodeNetworkReceiveBytes": "node_network_receive_bytes",
}
# Per system, columns whose unit is not what their header says. Online Boutique's "CpuUsage(m)" is
# percent of one core: on every pod it equals CpuUsageRate(%) times the pod's CPU limit in cores
# (frontend 5.34 = 26.7% x 0.2 cores, cartservice 1.59 = 5.30% x 0.3: the Online Boutique
# manifests' 200m and 300m limits), so 1.59 is 15.9 millicores. Train Ticket's is millicores
# (7.83 = 1.57% x 500m, its manifests' limit; MemoryUsageRate likewise gives their 2000Mi).
_SIGNALS_BY_SYSTEM: dict[str, dict[str, str]] = {
    "nezha-ob": {"CpuUsage(m)": "cpu_usage_core_percent"},
}
_METRIC_SUFFIX = "_metric.csv"
_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|WARN(?:ING)?|ERROR|FATAL|SEVERE|CRITICAL)\b")
_FLOAT = npt.NDArray[np.float64]


def service_of(pod: str) -> str:
    """``ts-order-service-5b67c48447-mv5hb`` → ``ts-order-service``."""
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else pod


def _is_day(path: Path) -> bool:
    return (path / f"{path.name}-fault_list.json").is_file() and (path / "metric").is_dir()


def _days(path: Path) -> list[Path]:
    if _is_day(path):
        return [path]
    for base in (path, path / "rca_data"):
        if base.is_dir():
            days = sorted(p for p in base.iterdir() if p.is_dir() and _is_day(p))
            if days:
                return days
    return []


def detect(path: Path) -> bool:
    return bool(_days(path))


@dataclass(frozen=True)
class Fault:
    at: float  # epoch seconds (UTC)
    pod: str
    kind: str


@dataclass
class _Day:
    path: Path
    dataset: str
    faults: list[Fault]
    # pod → (signal names, timestamps, values[signal, row])
    metrics: dict[str, tuple[list[str], _FLOAT, _FLOAT]]
    dependency: list[Edge]
    first_metric: float
    # (caller, callee) → (timestamps, p50 latency of its calls; NaN in a minute without calls)
    edges: dict[tuple[str, str], tuple[_FLOAT, _FLOAT]]


def _system(day: Path) -> str:
    pods = [p.name for p in (day / "metric").glob(f"*{_METRIC_SUFFIX}")]
    return "nezha-tt" if any(p.startswith("ts-") for p in pods) else "nezha-ob"


def _read_faults(day: Path) -> list[Fault]:
    path = day / f"{day.name}-fault_list.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        faults = [
            Fault(
                at=datetime.strptime(str(e["inject_time"]), "%Y-%m-%d %H:%M:%S")
                .replace(tzinfo=UTC)
                .timestamp(),
                pod=str(e["inject_pod"]),
                kind=str(e["inject_type"]),
            )
            for entries in raw.values()
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IncidentFormatError(path, f"unusable fault list ({type(exc).__name__}: {exc})") from None
    return sorted(faults, key=lambda f: f.at)


def discover(path: Path) -> list[CaseRef]:
    refs: list[CaseRef] = []
    for day in _days(path):
        dataset = _system(day)
        for fault in _read_faults(day):
            stamp = datetime.fromtimestamp(fault.at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            refs.append(CaseRef(FORMAT, dataset, stamp, str(day), key=str(fault.at)))
    return refs


@functools.lru_cache(maxsize=2)
def _day(path_text: str) -> _Day:
    day = Path(path_text)
    system = _system(day)
    metrics: dict[str, tuple[list[str], _FLOAT, _FLOAT]] = {}
    first = math.inf
    for path in sorted((day / "metric").glob(f"*{_METRIC_SUFFIX}")):
        names, stamps, columns = numeric_table(path, time_column="TimeStamp", skip=("Time", "PodName"))
        pod = path.name[: -len(_METRIC_SUFFIX)]
        own = {**_SIGNALS, **_SIGNALS_BY_SYSTEM.get(system, {})}
        signals = [own.get(n, re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_")) for n in names]
        order = np.argsort(np.asarray(stamps))
        metrics[pod] = (
            signals,
            np.asarray(stamps, dtype=np.float64)[order],
            np.asarray(columns, dtype=np.float64)[:, order],
        )
        first = min(first, float(stamps[int(order[0])]))
    if not metrics:
        raise IncidentFormatError(day / "metric", "no <pod>_metric.csv files")
    dependency: list[Edge] = []
    dep_path = day / "metric" / "dependency.csv"
    if dep_path.is_file():
        headers, body = rows(dep_path)
        cols = {name: i for i, name in enumerate(headers[0])}
        if "Source" not in cols or "Target" not in cols:
            raise IncidentFormatError(dep_path, "expected columns Source,Target")
        seen: set[Edge] = set()
        for _, row in body:
            edge = Edge(caller=row[cols["Source"]], callee=row[cols["Target"]])
            if edge.caller != edge.callee and edge not in seen:
                seen.add(edge)
                dependency.append(edge)
    services = {service_of(pod) for pod in metrics}
    return _Day(day, system, _read_faults(day), metrics, dependency, first, _edge_latencies(day, services))


# Online Boutique's per-edge p50 call latency as its callers measured it, one column per
# ``<caller>_<callee>`` and one row per minute; a cell is empty in a minute with no calls.
_EDGE_FILE = "source_50.csv"
EDGE_SIGNAL = "call_latency_p50_seconds"


def _edge_of(column: str, services: set[str]) -> tuple[str, str] | None:
    """``frontend_cartservice`` → (frontend, cartservice): the caller is one of the day's services.

    The callee may be outside them (an external host); a column with no known caller is not an edge.
    """
    for i, ch in enumerate(column):
        if ch == "_" and column[:i] in services and column[i + 1 :]:
            return column[:i], column[i + 1 :]
    return None


def _edge_latencies(day: Path, services: set[str]) -> dict[tuple[str, str], tuple[_FLOAT, _FLOAT]]:
    path = day / "metric" / _EDGE_FILE
    if not path.is_file():
        return {}
    names, stamps, columns = numeric_table(path, time_column="timestamp", skip=("time",))
    order = np.argsort(np.asarray(stamps))
    ts = np.asarray(stamps, dtype=np.float64)[order]
    out: dict[tuple[str, str], tuple[_FLOAT, _FLOAT]] = {}
    for name, column in zip(names, columns, strict=True):
        edge = _edge_of(name, services)
        if edge is not None:
            out[edge] = (ts, np.asarray(column, dtype=np.float64)[order])
    return out


def _minute_files(folder: Path, suffix: str, start: float, end: float) -> list[Path]:
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


_intern = sys.intern


class _RecordCache:
    """Parsed files, least recently used dropped first beyond a budget of records."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._items: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._size = 0

    def get(self, key: str, parse: Callable[[str], tuple[Any, ...]]) -> tuple[Any, ...]:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
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


_cache = _RecordCache(_CACHE_RECORDS)


def _trace_file(path_text: str) -> tuple[Span, ...]:
    path = Path(path_text)
    headers, body = rows(path)
    expected = ["TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano"]
    if headers[0][: len(expected)] != expected or "Duration" not in headers[0]:
        raise IncidentFormatError(path, "not a Nezha trace file (unexpected header)")
    dur = headers[0].index("Duration")
    services: dict[str, str] = {}
    out: list[Span] = []
    for line_no, row in body:
        pod = row[3]
        service = services.get(pod)
        if service is None:
            service = services[pod] = _intern(service_of(pod))
        try:
            start = int(row[5]) / 1e9
            duration_ms = float(row[dur]) / 1000.0
        except ValueError:
            raise IncidentFormatError(path, f"line {line_no}: bad start time or duration") from None
        parent = row[2]
        out.append(
            Span(
                trace_id=_intern(row[0]),
                span_id=row[1],
                parent_id=None if parent in ("root", "") else parent,
                service=service,
                operation=_intern(row[4]),
                start=start,
                duration_ms=duration_ms,
            )
        )
    return tuple(out)


def _message_and_level(raw: str) -> tuple[str, str]:
    """The log line and its level from the dataset's ``Log`` cell (a container-runtime JSON)."""
    text = raw
    try:
        outer = json.loads(raw)
        if isinstance(outer, dict) and isinstance(outer.get("log"), str):
            text = outer["log"]
    except ValueError:
        pass
    text = text.rstrip("\n")
    if text.startswith("{"):
        try:
            inner = json.loads(text)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            message = str(inner.get("message", inner.get("msg", text)))
            level = str(inner.get("severity", inner.get("level", "info"))).lower()
            return message, level
    match = _LEVEL.search(text[:80])
    level = match.group(1).lower() if match else "info"
    return text, {"warning": "warn", "severe": "error", "critical": "fatal"}.get(level, level)


def _log_file(path_text: str) -> tuple[LogRecord, ...]:
    path = Path(path_text)
    headers, body = rows(path, skip_bad_share=0.01)
    header = headers[0]
    if "TimeUnixNano" not in header or "PodName" not in header or "Log" not in header:
        raise IncidentFormatError(path, "not a Nezha log file (unexpected header)")
    t_idx, pod_idx, log_idx = header.index("TimeUnixNano"), header.index("PodName"), header.index("Log")
    # the trace and span a line was written in (empty outside a request): they link it to its call
    trace_idx = header.index("TraceID") if "TraceID" in header else None
    span_idx = header.index("SpanID") if "SpanID" in header else None
    services: dict[str, str] = {}
    out: list[LogRecord] = []
    for line_no, row in body:
        pod = row[pod_idx]
        service = services.get(pod)
        if service is None:
            service = services[pod] = _intern(service_of(pod))
        try:
            ts = int(row[t_idx]) / 1e9
        except ValueError:
            raise IncidentFormatError(path, f"line {line_no}: bad TimeUnixNano") from None
        message, level = _message_and_level(row[log_idx])
        trace_id = _intern(row[trace_idx]) if trace_idx is not None and trace_idx < len(row) else ""
        span_id = row[span_idx] if span_idx is not None and span_idx < len(row) else ""
        out.append(
            LogRecord(
                timestamp=ts,
                service=service,
                level=_intern(level),
                message=message,
                trace_id=trace_id or None,
                span_id=span_id or None,
            )
        )
    out.sort(key=lambda r: r.timestamp)
    return tuple(out)


def _reference_day(day: Path) -> Path | None:
    """``construct_data/<day>`` next to the ``rca_data`` folder holding ``day``, if it has events."""
    folder = day.parent.parent / "construct_data" / day.name
    if any((folder / kind).is_dir() for kind in ("log", "trace")):
        return folder
    return None


@functools.lru_cache(maxsize=2)
def _reference(day_text: str) -> tuple[tuple[LogRecord, ...], tuple[Span, ...]]:
    """The fault-free logs and spans recorded for the day (empty when the dataset has none)."""
    folder = _reference_day(Path(day_text))
    if folder is None:
        return (), ()
    logs = [r for p in sorted((folder / "log").glob("*_log.csv")) for r in _log_file(str(p))]
    spans = [s for p in sorted((folder / "trace").glob("*_trace.csv")) for s in _trace_file(str(p))]
    logs.sort(key=lambda r: r.timestamp)
    return tuple(logs), tuple(spans)


def _reference_window(logs: tuple[LogRecord, ...], spans: tuple[Span, ...]) -> TimeWindow | None:
    stamps = [r.timestamp for r in logs] + [s.start for s in spans]
    if not stamps or max(stamps) <= min(stamps):
        return None
    # whole seconds outwards: the records are stamped in nanoseconds, a datetime holds microseconds
    return TimeWindow(start=utc(math.floor(min(stamps))), end=utc(math.ceil(max(stamps))))


def _window(day: _Day, fault: Fault) -> tuple[float, float]:
    later = [f.at for f in day.faults if f.at > fault.at]
    end = fault.at + LOOKAHEAD.total_seconds()
    if later:
        end = min(end, later[0] - NEXT_FAULT_MARGIN.total_seconds())
    start = max(fault.at - LOOKBACK.total_seconds(), day.first_metric)
    return start, end


def _excluded(day: _Day, fault: Fault, start: float) -> list[tuple[float, float]]:
    """[from, to) spans of earlier faults (injection to RECOVERY_MARGIN after) within the window."""
    margin = RECOVERY_MARGIN.total_seconds()
    return [
        (f.at, min(f.at + margin, fault.at)) for f in day.faults if f.at < fault.at and f.at + margin > start
    ]


def _outside(ts: float, excluded: list[tuple[float, float]]) -> bool:
    return not any(lo <= ts < hi for lo, hi in excluded)


def _kept(
    stamps: _FLOAT, start: float, end: float, excluded: list[tuple[float, float]] | None
) -> npt.NDArray[np.intp]:
    """Indices of the sorted ``stamps`` in [start, end] outside the ``excluded`` spans."""
    keep = np.arange(np.searchsorted(stamps, start, "left"), np.searchsorted(stamps, end, "right"))
    for a, b in excluded or ():
        keep = keep[(stamps[keep] < a) | (stamps[keep] >= b)]
    return keep


def _metrics(
    day: _Day, start: float, end: float, excluded: list[tuple[float, float]] | None = None
) -> list[MetricSeries]:
    out: list[MetricSeries] = []
    per_service: dict[str, int] = {}
    for pod in day.metrics:
        svc = service_of(pod)
        per_service[svc] = per_service.get(svc, 0) + 1
    for pod, (signals, stamps, values) in day.metrics.items():
        keep = _kept(stamps, start, end, excluded)
        if not keep.size:
            continue
        svc = service_of(pod)
        # Several replicas of one service: keep them apart by naming the pod in the signal.
        suffix = f"[{pod}]" if per_service[svc] > 1 else ""
        ts = stamps[keep].tolist()
        for i, signal in enumerate(signals):
            out.append(
                MetricSeries(
                    service=svc,
                    signal=signal + suffix,
                    kind=classify_signal(signal),
                    unit=unit_of(signal),
                    timestamps=ts,
                    values=values[i, keep].tolist(),
                )
            )
    for (caller, callee), (stamps, values) in day.edges.items():
        keep = _kept(stamps, start, end, excluded)
        if keep.size:
            out.append(
                MetricSeries(
                    service=caller,
                    peer=callee,
                    signal=EDGE_SIGNAL,
                    kind=classify_signal(EDGE_SIGNAL),
                    unit=unit_of(EDGE_SIGNAL),
                    timestamps=stamps[keep].tolist(),
                    values=values[keep].tolist(),
                )
            )
    return out


def _trace_topology(spans: list[Span]) -> list[Edge]:
    owner = {s.span_id: s.service for s in spans}
    seen: set[tuple[str, str]] = set()
    for s in spans:
        if s.parent_id is None:
            continue
        caller = owner.get(s.parent_id)
        if caller is not None and caller != s.service:
            seen.add((caller, s.service))
    return [Edge(caller=a, callee=b) for a, b in sorted(seen)]


def load(ref: CaseRef) -> RecordedIncident:
    day = _day(ref.path)
    try:
        at = float(ref.key)
    except ValueError:
        raise IncidentFormatError(ref.path, f"bad case key {ref.key!r}") from None
    fault = next((f for f in day.faults if f.at == at), None)
    if fault is None:
        raise IncidentFormatError(ref.path, f"no fault injected at {ref.case_id}")
    start, end = _window(day, fault)
    excluded = _excluded(day, fault, start)
    metrics = _metrics(day, start, end, excluded)
    trace_files = [str(p) for p in _minute_files(day.path / "trace", "_trace.csv", start, end)]
    log_files = [str(p) for p in _minute_files(day.path / "log", "_log.csv", start, end)]
    # Cases are loaded in time order, so files before this window will not be needed again:
    # the cache holds about one window's files, not the whole day.
    _cache.retain({*trace_files, *log_files})
    spans = [
        s
        for path in trace_files
        for s in _cache.get(path, _trace_file)
        if start <= s.start <= end and _outside(s.start, excluded)
    ]
    logs = [
        r
        for path in log_files
        for r in _cache.get(path, _log_file)
        if start <= r.timestamp <= end and _outside(r.timestamp, excluded)
    ]
    ref_logs, ref_spans = _reference(str(day.path))
    # The reference's records keep their own times: the replayed sources serve them for the reference
    # window (and, where it overlaps the case's window, as the ordinary records they are).
    reference = _reference_window(ref_logs, ref_spans)
    # Only case records inside the reference's minutes can duplicate one of its records.
    lo, hi = (reference.start_s, reference.end_s) if reference is not None else (math.inf, -math.inf)
    seen_logs = {(r.timestamp, r.service, r.message) for r in logs if lo <= r.timestamp <= hi}
    seen_spans = {s.span_id for s in spans if lo <= s.start <= hi}
    logs += [r for r in ref_logs if (r.timestamp, r.service, r.message) not in seen_logs]
    spans += [s for s in ref_spans if s.span_id not in seen_spans]
    logs.sort(key=lambda r: r.timestamp)
    edges = day.dependency if day.dependency else _trace_topology(spans)
    services = sorted({m.service for m in metrics} | {e.caller for e in edges} | {e.callee for e in edges})
    incident = Incident(
        id=opaque_incident_id(day.dataset, ref.case_id),
        title=f"Recorded {'Train Ticket' if day.dataset == 'nezha-tt' else 'Online Boutique'} incident",
        origin="recorded",
        window=TimeWindow(start=utc(start), end=utc(end)),
        alert_time=utc(fault.at),
        reference=reference,
    )
    return RecordedIncident(
        dataset=day.dataset,
        case_id=ref.case_id,
        incident=incident,
        metrics=metrics,
        logs=logs,
        spans=spans,
        topology=Topology(services=services, edges=list(edges)),
        truth=GroundTruth(
            service=service_of(fault.pod), fault_type=FAULT_TYPES.get(fault.kind), fault_label=fault.kind
        ),
        source_path=str(day.path),
    )

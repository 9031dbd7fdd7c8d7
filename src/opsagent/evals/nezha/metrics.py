"""A Nezha day's metrics: one CSV per pod (a row per minute), Online Boutique's call graph and its
per-edge call latencies, read once per day; and the series of one window.

A pod's service is its name without the last two ``-`` segments (the ReplicaSet hash and the pod
suffix); several replicas of one service are kept apart by naming the pod in the signal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from opsagent.domain import Edge, MetricSeries, SignalKind
from opsagent.domain.signals import classify_signal, unit_of
from opsagent.errors import IncidentFormatError
from opsagent.evals.nezha.layout import METRIC_SUFFIX, service_of
from opsagent.evals.tables import numeric_table, rows

FLOATS = npt.NDArray[np.float64]

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
# Online Boutique's per-edge p50 call latency as its callers measured it, one column per
# ``<caller>_<callee>`` and one row per minute; a cell is empty in a minute with no calls.
_EDGE_FILE = "source_50.csv"
EDGE_SIGNAL = "call_latency_p50_seconds"


@dataclass
class DayMetrics:
    # pod → (signal names, timestamps, values[signal, row])
    pods: dict[str, tuple[list[str], FLOATS, FLOATS]]
    dependency: list[Edge]
    first: float
    # (caller, callee) → (timestamps, p50 latency of its calls; NaN in a minute without calls)
    edges: dict[tuple[str, str], tuple[FLOATS, FLOATS]]


def read_day_metrics(day: Path, system: str) -> DayMetrics:
    pods: dict[str, tuple[list[str], FLOATS, FLOATS]] = {}
    first = math.inf
    own = {**_SIGNALS, **_SIGNALS_BY_SYSTEM.get(system, {})}
    for path in sorted((day / "metric").glob(f"*{METRIC_SUFFIX}")):
        names, stamps, columns = numeric_table(path, time_column="TimeStamp", skip=("Time", "PodName"))
        pod = path.name[: -len(METRIC_SUFFIX)]
        signals = [own.get(n, re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_")) for n in names]
        order = np.argsort(np.asarray(stamps))
        pods[pod] = (
            signals,
            np.asarray(stamps, dtype=np.float64)[order],
            np.asarray(columns, dtype=np.float64)[:, order],
        )
        first = min(first, float(stamps[int(order[0])]))
    if not pods:
        raise IncidentFormatError(day / "metric", "no <pod>_metric.csv files")
    services = {service_of(pod) for pod in pods}
    return DayMetrics(
        pods, _dependency(day / "metric" / "dependency.csv"), first, _edge_latencies(day, services)
    )


def _dependency(path: Path) -> list[Edge]:
    if not path.is_file():
        return []
    headers, body = rows(path)
    cols = {name: i for i, name in enumerate(headers[0])}
    if "Source" not in cols or "Target" not in cols:
        raise IncidentFormatError(path, "expected columns Source,Target")
    seen: set[Edge] = set()
    out: list[Edge] = []
    for _, row in body:
        edge = Edge(caller=row[cols["Source"]], callee=row[cols["Target"]])
        if edge.caller != edge.callee and edge not in seen:
            seen.add(edge)
            out.append(edge)
    return out


def edge_of(column: str, services: set[str]) -> tuple[str, str] | None:
    """``frontend_cartservice`` → (frontend, cartservice): the caller is one of the day's services.

    The callee may be outside them (an external host); a column with no known caller is not an edge.
    """
    for i, ch in enumerate(column):
        if ch == "_" and column[:i] in services and column[i + 1 :]:
            return column[:i], column[i + 1 :]
    return None


def _edge_latencies(day: Path, services: set[str]) -> dict[tuple[str, str], tuple[FLOATS, FLOATS]]:
    path = day / "metric" / _EDGE_FILE
    if not path.is_file():
        return {}
    names, stamps, columns = numeric_table(path, time_column="timestamp", skip=("time",))
    order = np.argsort(np.asarray(stamps))
    ts = np.asarray(stamps, dtype=np.float64)[order]
    out: dict[tuple[str, str], tuple[FLOATS, FLOATS]] = {}
    for name, column in zip(names, columns, strict=True):
        edge = edge_of(name, services)
        if edge is not None:
            out[edge] = (ts, np.asarray(column, dtype=np.float64)[order])
    return out


def kept(
    stamps: FLOATS, start: float, end: float, excluded: list[tuple[float, float]]
) -> npt.NDArray[np.intp]:
    """Indices of the sorted ``stamps`` in [start, end] outside the ``excluded`` [from, to) spans."""
    keep = np.arange(np.searchsorted(stamps, start, "left"), np.searchsorted(stamps, end, "right"))
    for a, b in excluded:
        keep = keep[(stamps[keep] < a) | (stamps[keep] >= b)]
    return keep


def window_series(
    day: DayMetrics, start: float, end: float, excluded: list[tuple[float, float]]
) -> list[MetricSeries]:
    """Every pod's and call edge's series in [start, end], the ``excluded`` spans left out."""
    out: list[MetricSeries] = []
    # Kind and unit follow from the signal's name alone; the day's ~850 series share ~20 names, and
    # classifying each series again was ~40% of a window's series.
    kinds: dict[str, tuple[SignalKind, str]] = {}
    per_service: dict[str, int] = {}
    for pod in day.pods:
        svc = service_of(pod)
        per_service[svc] = per_service.get(svc, 0) + 1
    for pod, (signals, stamps, values) in day.pods.items():
        keep = kept(stamps, start, end, excluded)
        if not keep.size:
            continue
        svc = service_of(pod)
        # Several replicas of one service: keep them apart by naming the pod in the signal.
        suffix = f"[{pod}]" if per_service[svc] > 1 else ""
        ts = stamps[keep].tolist()
        for i, signal in enumerate(signals):
            kind_unit = kinds.get(signal)
            if kind_unit is None:
                kind_unit = kinds[signal] = (classify_signal(signal), unit_of(signal))
            out.append(
                MetricSeries(
                    service=svc,
                    signal=signal + suffix,
                    kind=kind_unit[0],
                    unit=kind_unit[1],
                    timestamps=ts,
                    values=values[i, keep].tolist(),
                )
            )
    for (caller, callee), (stamps, values) in day.edges.items():
        keep = kept(stamps, start, end, excluded)
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

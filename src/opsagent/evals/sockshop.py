"""Importer for the Sock Shop data of RCD (azamikram/rcd, NeurIPS 2022; "Sock Shop 1" in RCAEval).

Layout: ``<service>-<cpu|mem>/<run>/{normal,anomalous}.csv``, a ``time`` column (epoch s, one row
per second) then ``<container>_<cpu|mem|lod|lat_50|lat_90|lat_99>`` columns. The folder name is the
ground truth.

How a case is built:

* ``normal.csv`` and ``anomalous.csv`` were recorded days apart. The normal rows are shifted to end
  one second before the first anomalous row, so the history is continuous as it would be live.
* The anomaly starts at the first anomalous row: that is ``alert_time``.
* A database container ``x-db`` belongs to service ``x``; its signals get a ``db_`` prefix.
* Memory is in bytes (``memory_bytes``); CPU and load keep the dataset's units.
"""

from __future__ import annotations

import re
from pathlib import Path

from opsagent.domain import FaultType, GroundTruth, Incident, MetricSeries, RecordedIncident, TimeWindow
from opsagent.domain.signals import classify_signal, unit_of
from opsagent.errors import IncidentFormatError
from opsagent.evals.cases import CaseRef, opaque_incident_id, utc
from opsagent.evals.tables import numeric_table

FORMAT = "sockshop-rcd"
DATASET = "sockshop-rcd"

_COLUMN = re.compile(r"^(?P<container>.+)_(?P<metric>cpu|mem|lod|lat_\d+)$")
_FAULTS = {"cpu": FaultType.CPU, "mem": FaultType.MEMORY}
_CASE_DIR = re.compile(r"^(?P<service>.+)-(?P<fault>cpu|mem|[a-z]+)$")


def _is_run(path: Path) -> bool:
    return (path / "normal.csv").is_file() and (path / "anomalous.csv").is_file()


def _is_case_dir(path: Path) -> bool:
    return path.is_dir() and any(_is_run(child) for child in path.iterdir() if child.is_dir())


def detect(path: Path) -> bool:
    if _is_run(path) or _is_case_dir(path):
        return True
    return path.is_dir() and any(_is_case_dir(child) for child in path.iterdir() if child.is_dir())


def _run_key(path: Path) -> tuple[int, str]:
    return (int(path.name), path.name) if path.name.isdigit() else (1 << 30, path.name)


def discover(path: Path) -> list[CaseRef]:
    if _is_run(path):
        runs = [path]
    elif _is_case_dir(path):
        runs = sorted((p for p in path.iterdir() if _is_run(p)), key=_run_key)
    else:
        runs = []
        for case_dir in sorted(p for p in path.iterdir() if _is_case_dir(p)):
            runs.extend(sorted((p for p in case_dir.iterdir() if _is_run(p)), key=_run_key))
    return [CaseRef(FORMAT, DATASET, f"{run.parent.name}/{run.name}", str(run)) for run in runs]


def _signal(container: str, metric: str) -> tuple[str, str]:
    """(service, signal) for a column's container and metric."""
    service, prefix = container, ""
    if container.endswith("-db"):
        service, prefix = container[: -len("-db")], "db_"
    if metric == "cpu":
        name = "cpu_usage"
    elif metric == "mem":
        name = "memory_bytes"
    elif metric == "lod":
        name = "load"
    else:
        name = f"latency_p{metric.split('_')[1]}_seconds"
    return service, prefix + name


def load(ref: CaseRef) -> RecordedIncident:
    run = Path(ref.path)
    match = _CASE_DIR.match(run.parent.name)
    if match is None:
        raise IncidentFormatError(run.parent, "folder name is not <service>-<fault>")
    names_n, stamps_n, cols_n = numeric_table(run / "normal.csv", time_column="time")
    names_a, stamps_a, cols_a = numeric_table(run / "anomalous.csv", time_column="time")
    if names_n != names_a:
        raise IncidentFormatError(run / "anomalous.csv", "columns differ from normal.csv")
    # Shift the normal recording to end one second before the anomaly starts.
    offset = (stamps_a[0] - 1.0) - stamps_n[-1]
    stamps = [t + offset for t in stamps_n] + stamps_a
    metrics: list[MetricSeries] = []
    for name, normal, anomalous in zip(names_n, cols_n, cols_a, strict=True):
        col = _COLUMN.match(name)
        if col is None:
            continue
        service, signal = _signal(col["container"], col["metric"])
        metrics.append(
            MetricSeries(
                service=service,
                signal=signal,
                kind=classify_signal(signal),
                unit=unit_of(signal),
                timestamps=stamps,
                values=normal + anomalous,
            )
        )
    if not metrics:
        raise IncidentFormatError(run / "normal.csv", "no <container>_<metric> columns")
    fault = match["fault"]
    incident = Incident(
        id=opaque_incident_id(DATASET, ref.case_id),
        title="Recorded Sock Shop incident",
        origin="recorded",
        window=TimeWindow(start=utc(stamps[0]), end=utc(stamps[-1])),
        alert_time=utc(stamps_a[0]),
    )
    return RecordedIncident(
        dataset=DATASET,
        case_id=ref.case_id,
        incident=incident,
        metrics=metrics,
        truth=GroundTruth(service=match["service"], fault_type=_FAULTS.get(fault), fault_label=fault),
        source_path=str(run),
    )

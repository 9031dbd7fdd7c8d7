"""Importer for the PetShop dataset (amazon-science/petshop-root-cause-analysis, CLeaR 2024).

Layout: ``<scenario>/graph.csv`` (adjacency matrix, caller row → callee column),
``<scenario>/noissue/metrics.csv`` (a normal period, absent for ``temporal_traffic*``) and
``<scenario>/{train,test}/issue_N/{metrics.csv,target.json}`` (5 rows of 5-minute buckets around an
issue). The authors publish both splits and report their figures on ``test/``: both are read, and
each case carries its split, as its dataset (``petshop`` for ``train/``, ``petshop-test`` for
``test/``, so reports never pool them) and in its case id (``<scenario>/test/issue_N``).

How a case is built:

* The issue's 5 buckets carry the incident. The normal period was recorded months later, so it is
  shifted in time to end ``JOIN_GAP_BUCKETS + 1`` buckets before the issue's first bucket: one
  history, with the join marked as what it is, a gap in the recording (one missing bucket). Levels
  may have drifted between the two recordings; that is the dataset's, and kept. A step at the join
  is then a step across a gap, which onset detection does not take for the incident's onset (it
  cannot be dated: nothing was observed in between). Scenarios without a normal period get only
  the issue's buckets.
* Timestamps are the files' own index: the *start* of each 5-minute bucket (CloudWatch's
  convention), in all four scenarios. Checked against the issues: the bucket containing
  ``target.timestamp`` shows the fault in proportion to the part of it after that time (strongly
  for alerts 300-310 s into the recording, i.e. at the bucket's start, as in high_traffic issue_1/3
  and temporal_traffic1 issue_0; barely for alerts 530-590 s in, whose next bucket is the first
  fully anomalous one). An end-of-bucket index would put anomalies before the fault in the former.
* ``alert_time`` is the violated SLO's timestamp (``target.timestamp``), what a real alert gives.
* NaN means no traffic in that bucket and stays NaN.
* The fault kind exists only as the reproduction command; it is mapped to a fault type where it
  is unambiguous and kept verbatim as ``fault_label``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from pathlib import Path

from opsagent.domain import (
    Alert,
    Edge,
    FaultType,
    GroundTruth,
    Incident,
    MetricSeries,
    RecordedIncident,
    TimeWindow,
    Topology,
)
from opsagent.domain.signals import classify_signal, unit_of
from opsagent.errors import IncidentFormatError
from opsagent.evals.cases import CaseRef, opaque_incident_id, utc
from opsagent.evals.tables import rows, to_float

FORMAT = "petshop"
DATASET = "petshop"
# The published splits, in reading order, with the dataset name each is reported under.
SPLITS: dict[str, str] = {"train": DATASET, "test": f"{DATASET}-test"}
BUCKET_SECONDS = 300.0
# Buckets left empty between the (shifted) normal recording and the issue: one, so the join is a
# visible gap in the timestamps and no series steps from one recording to the other between two
# adjacent samples.
JOIN_GAP_BUCKETS = 1
# Rows 1-3 name node, metric and statistic; row 4 is the index column's label.
_HEADER_ROWS = 4

_ALERT_NAMES = {"latency": "SLOLatencyBudgetBurn", "availability": "SLOErrorBudgetBurnFast"}
# Reproduction command → fault type; first match wins. DynamoDB overload is left unmapped: it
# shows up as throttling errors or latency depending on the caller.
_FAULT_RULES: list[tuple[re.Pattern[str], FaultType]] = [
    (re.compile(r"error", re.I), FaultType.ERRORS_CODE),
    (re.compile(r"delay|sleep|latency", re.I), FaultType.LATENCY_NETWORK),
]


def _is_scenario(path: Path) -> bool:
    return (path / "graph.csv").is_file() and any((path / split).is_dir() for split in SPLITS)


def detect(path: Path) -> bool:
    if (path / "target.json").is_file() and (path / "metrics.csv").is_file():
        return _is_scenario(path.parent.parent)
    if _is_scenario(path):
        return True
    return path.is_dir() and any(_is_scenario(child) for child in path.iterdir() if child.is_dir())


def _issue_number(path: Path) -> int:
    tail = path.name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 1 << 30


def _scenario_issues(scenario: Path) -> list[Path]:
    issues: list[Path] = []
    for split in SPLITS:
        issues.extend(sorted((scenario / split).glob("issue_*"), key=_issue_number))
    return issues


def _ref(issue: Path) -> CaseRef:
    """An issue's case: its split's dataset, and the split in its id unless it is ``train``."""
    split = issue.parent.name
    dataset = SPLITS.get(split, DATASET)
    scenario = issue.parent.parent.name
    case_id = f"{scenario}/{issue.name}" if dataset == DATASET else f"{scenario}/{split}/{issue.name}"
    return CaseRef(FORMAT, dataset, case_id, str(issue))


def discover(path: Path) -> list[CaseRef]:
    if (path / "target.json").is_file():
        issues = [path]
    elif _is_scenario(path):
        issues = _scenario_issues(path)
    else:
        issues = []
        for scenario in sorted(p for p in path.iterdir() if _is_scenario(p)):
            issues.extend(_scenario_issues(scenario))
    return [_ref(issue) for issue in issues if (issue / "target.json").is_file()]


def _signal_name(metric: str, statistic: str) -> str:
    metric, statistic = metric.strip().lower(), statistic.strip().lower()
    if metric == "latency":
        return f"latency_{statistic}_seconds"
    if metric == "requests":
        return "requests_per_5m"
    if metric == "availability":
        return "availability_percent"
    return f"{metric}_{statistic}".replace(" ", "_")


Key = tuple[str, str]  # (node, signal)


def read_metrics(path: Path) -> tuple[list[float], dict[Key, list[float]]]:
    """A PetShop metrics.csv: timestamps and one value list per (node, signal)."""
    headers, body = rows(path, header_rows=_HEADER_ROWS)
    nodes, metrics, stats = headers[0], headers[1], headers[2]
    if len(metrics) != len(nodes) or len(stats) != len(nodes):
        raise IncidentFormatError(path, "the three header rows (node, metric, statistic) differ in width")
    keys: list[Key] = [
        (nodes[i], _signal_name(metrics[i], stats[i])) for i in range(1, len(nodes)) if nodes[i]
    ]
    index = [i for i in range(1, len(nodes)) if nodes[i]]
    stamps: list[float] = []
    columns: dict[Key, list[float]] = {k: [] for k in keys}
    for line_no, row in body:
        stamps.append(to_float(row[0], path, line_no))
        for key, i in zip(keys, index, strict=True):
            columns[key].append(to_float(row[i], path, line_no))
    if not stamps or any(math.isnan(t) for t in stamps):
        raise IncidentFormatError(path, "no data rows or an empty timestamp")
    return stamps, columns


@functools.lru_cache(maxsize=4)
def _normal_metrics(path_text: str, _mtime_ns: int, _size: int) -> tuple[list[float], dict[Key, list[float]]]:
    """``read_metrics`` of a scenario's normal recording, read once for all of its issues (each case
    used to parse the whole file again: ~0.15 s of a 0.2 s load); keyed by the file's change time and
    size too, so a file changed on disk is read again. Callers must not change what it returns."""
    return read_metrics(Path(path_text))


def read_graph(path: Path) -> Topology:
    headers, body = rows(path)
    callees = headers[0][1:]
    edges: list[Edge] = []
    services = [c for c in callees if c]
    for line_no, row in body:
        caller = row[0]
        if caller and caller not in services:
            services.append(caller)
        for callee, cell in zip(callees, row[1:], strict=True):
            value = to_float(cell, path, line_no)
            if callee and caller and caller != callee and not math.isnan(value) and value != 0:
                edges.append(Edge(caller=caller, callee=callee))
    return Topology(services=services, edges=edges)


def _fault_type(command: str) -> FaultType | None:
    for pattern, fault in _FAULT_RULES:
        if pattern.search(command):
            return fault
    return None


def _read_target(path: Path) -> tuple[str, str, str, float, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        target = raw["target"]
        node = str(raw["root_cause"]["node"])
        command = str(raw.get("metadata", {}).get("reproducibility", {}).get("command", ""))
        return str(target["node"]), str(target["metric"]), node, float(target["timestamp"]), command
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IncidentFormatError(path, f"unusable target.json ({type(exc).__name__}: {exc})") from None


def load(ref: CaseRef) -> RecordedIncident:
    issue = Path(ref.path)
    scenario = issue.parent.parent
    target_node, target_metric, root_node, alert_ts, command = _read_target(issue / "target.json")
    stamps, columns = read_metrics(issue / "metrics.csv")
    normal_path = scenario / "noissue" / "metrics.csv"
    normal_stamps: list[float] = []
    normal_columns: dict[Key, list[float]] = {}
    if normal_path.is_file():
        stat = normal_path.stat()
        raw_stamps, normal_columns = _normal_metrics(str(normal_path), stat.st_mtime_ns, stat.st_size)
        # Shift the (later) normal recording to end before the issue, a gap of JOIN_GAP_BUCKETS between.
        offset = (stamps[0] - (JOIN_GAP_BUCKETS + 1) * BUCKET_SECONDS) - max(raw_stamps)
        normal_stamps = [t + offset for t in raw_stamps]
    all_stamps = normal_stamps + stamps
    order = sorted(range(len(all_stamps)), key=all_stamps.__getitem__)
    timestamps = [all_stamps[i] for i in order]
    metrics: list[MetricSeries] = []
    for (node, signal), values in columns.items():
        before = normal_columns.get((node, signal), [math.nan] * len(normal_stamps))
        joined = before + values
        if all(math.isnan(v) for v in joined):
            continue
        metrics.append(
            MetricSeries(
                service=node,
                signal=signal,
                kind=classify_signal(signal),
                unit=unit_of(signal),
                timestamps=timestamps,
                values=[joined[i] for i in order],
            )
        )
    graph_path = scenario / "graph.csv"
    topology = read_graph(graph_path) if graph_path.is_file() else Topology()
    alert_name = _ALERT_NAMES.get(target_metric, "SLOViolation")
    starts_at = utc(alert_ts)
    alert = Alert(
        fingerprint=hashlib.sha256(f"{ref.case_id}|{alert_ts}".encode()).hexdigest()[:16],
        name=alert_name,
        labels={"alertname": alert_name, "service": target_node, "slo_metric": target_metric},
        annotations={"summary": f"{target_metric} SLO of {target_node} violated"},
        starts_at=starts_at,
    )
    incident = Incident(
        id=opaque_incident_id(DATASET, ref.case_id),
        title=f"{alert_name} {target_node}: {target_metric} SLO violated",
        origin="recorded",
        alerts=[alert],
        window=TimeWindow(start=utc(min(all_stamps)), end=utc(max(all_stamps) + BUCKET_SECONDS)),
        alert_time=starts_at,
    )
    return RecordedIncident(
        dataset=ref.dataset,
        case_id=ref.case_id,
        incident=incident,
        metrics=metrics,
        topology=topology,
        truth=GroundTruth(service=root_node, fault_type=_fault_type(command), fault_label=command or None),
        source_path=str(issue),
    )

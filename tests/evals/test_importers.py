"""Importers on small committed excerpts of Nezha and PetShop, and a synthetic Sock Shop folder."""

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsagent.domain import Edge, FaultType, SignalKind
from opsagent.evals import nezha, petshop, sockshop
from opsagent.evals.discover import detect_format, discover, load_case
from opsagent.evals.nezha.metrics import edge_of

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PETSHOP = FIXTURES / "petshop"
NEZHA = FIXTURES / "nezha"


def _utc(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


# --- PetShop -----------------------------------------------------------------------------------


def _petshop_cell(folder: str, stamp: float, node: str) -> float:
    """The average latency of ``node`` at ``stamp``, read straight from the CSV."""
    rows = list(csv.reader((PETSHOP / folder / "metrics.csv").open(newline="")))
    col = next(
        i for i, n in enumerate(rows[0]) if n == node and rows[1][i] == "latency" and rows[2][i] == "Average"
    )
    return float(next(r[col] for r in rows[4:] if float(r[0]) == stamp))


def test_petshop_cases_are_found_in_a_stable_order():
    refs = discover(PETSHOP)
    assert [r.case_id for r in refs] == [
        "low_traffic/issue_0",
        "low_traffic/issue_4",
        "temporal_traffic1/issue_0",
    ]
    assert {r.dataset for r in refs} == {"petshop"}


def test_petshop_normal_period_is_shifted_to_end_one_missing_bucket_before_the_issue():
    rec = load_case(discover(PETSHOP, case_glob="low_traffic/issue_0")[0])
    series = next(m for m in rec.metrics if m.service == "PetSite" and m.signal == "latency_average_seconds")
    issue_first = 1681855320.0
    assert len(series.timestamps) == 12 + 5
    # The normal recording (months later) now ends before the issue with one 5-minute bucket
    # missing in between: the join is a gap, not two adjacent samples.
    assert series.timestamps[11] == issue_first - 600
    assert series.timestamps[12] == issue_first
    assert series.timestamps == sorted(series.timestamps)
    # Its values are the files' own, unchanged.
    assert series.values[11] == _petshop_cell("low_traffic/noissue", 1692784800.0, "PetSite")
    assert series.values[12] == _petshop_cell("low_traffic/train/issue_0", issue_first, "PetSite")
    assert series.kind is SignalKind.LATENCY


def test_petshop_alert_time_truth_and_call_graph():
    rec = load_case(discover(PETSHOP, case_glob="low_traffic/issue_0")[0])
    assert rec.incident.alert_time == datetime.fromtimestamp(1681855803, UTC)
    assert rec.incident.window.start_s < rec.incident.alert_time.timestamp() < rec.incident.window.end_s
    assert rec.incident.alert_names == ["SLOLatencyBudgetBurn"]
    assert rec.incident.alerts[0].service == "PetSite"
    assert rec.truth.service == "PetSearch_AWS::ECS::Fargate"
    assert rec.truth.fault_type is FaultType.LATENCY_NETWORK
    assert "searchdelay" in rec.truth.fault_label
    assert set(rec.topology.edges) == {
        Edge(caller="PetSearch_client", callee="PetSearch_AWS::ECS::Fargate"),
        Edge(caller="PetSite", callee="PetSearch_AWS::ECS::Fargate"),
    }
    # The incident id must not reveal the case (an LLM reads it).
    assert "issue" not in rec.incident.id and "PetSearch" not in rec.incident.title


def test_petshop_error_fault_and_signals_keep_their_kinds():
    rec = load_case(discover(PETSHOP, case_glob="*issue_4")[0])
    assert rec.truth.fault_type is FaultType.ERRORS_CODE
    assert rec.incident.alert_names == ["SLOErrorBudgetBurnFast"]
    kinds = {m.signal: m.kind for m in rec.metrics}
    assert kinds["availability_percent"] is SignalKind.ERRORS
    assert kinds["requests_per_5m"] is SignalKind.TRAFFIC
    assert kinds["latency_p99_seconds"] is SignalKind.LATENCY


def test_petshop_without_a_normal_period_keeps_only_the_issue_and_its_nans():
    rec = load_case(discover(PETSHOP, case_glob="temporal*")[0])
    assert all(len(m.timestamps) == 5 for m in rec.metrics)
    # NaN (no traffic in the bucket) stays NaN; series that are NaN throughout are dropped.
    assert all(not all(math.isnan(v) for v in m.values) for m in rec.metrics)


def _synthetic_petshop_issue(folder: Path, first: float, root: str, command: str) -> None:
    """One issue in PetShop's layout: two nodes, the three header rows, five 5-minute buckets."""
    folder.mkdir(parents=True)
    header = [
        ["microservice", "PetSite", "PetSearch", "PetSite", "PetSearch"],
        ["metric", "latency", "latency", "requests", "requests"],
        ["statistic", "Average", "Average", "Sum", "Sum"],
        ["unix_timestamp", "", "", "", ""],
    ]
    body = [
        [f"{first + 300 * i}", f"{0.1 + 0.3 * (i >= 2)}", f"{0.01 + 0.2 * (i >= 2)}", "900", "700"]
        for i in range(5)
    ]
    with (folder / "metrics.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(header + body)
    target = {
        "target": {"node": "PetSite", "metric": "latency", "agg": "Average", "timestamp": first + 600},
        "root_cause": {"node": root, "metric": None},
        "metadata": {"reproducibility": {"command": command}},
    }
    (folder / "target.json").write_text(json.dumps(target))


def test_petshop_reads_the_train_and_test_splits_and_tags_each_case(tmp_path: Path):
    scenario = tmp_path / "high_traffic"
    scenario.mkdir()
    (scenario / "graph.csv").write_text(",PetSite,PetSearch\nPetSite,0,1\nPetSearch,0,0\n")
    _synthetic_petshop_issue(scenario / "train" / "issue_1", 1_700_000_000.0, "PetSearch", "searchdelay 2000")
    _synthetic_petshop_issue(scenario / "test" / "issue_0", 1_700_100_000.0, "PetSearch", "searcherror 1")
    _synthetic_petshop_issue(scenario / "test" / "issue_2", 1_700_200_000.0, "PetSite", "sleep 3")
    assert detect_format(tmp_path) == "petshop"
    refs = discover(tmp_path)
    assert [(r.dataset, r.case_id) for r in refs] == [
        ("petshop", "high_traffic/issue_1"),
        ("petshop-test", "high_traffic/test/issue_0"),
        ("petshop-test", "high_traffic/test/issue_2"),
    ]
    held_out = load_case(refs[1])
    assert held_out.dataset == "petshop-test" and held_out.case_id == "high_traffic/test/issue_0"
    assert held_out.truth.service == "PetSearch" and held_out.truth.fault_type is FaultType.ERRORS_CODE
    assert held_out.incident.alert_time == datetime.fromtimestamp(1_700_100_600.0, UTC)
    # a case's incident id stays opaque and differs between the splits
    assert len({load_case(r).incident.id for r in refs}) == 3
    # a scenario with only test/ issues is still a scenario
    only_test = tmp_path / "only"
    (only_test / "low_traffic").mkdir(parents=True)
    (only_test / "low_traffic" / "graph.csv").write_text((scenario / "graph.csv").read_text())
    _synthetic_petshop_issue(only_test / "low_traffic" / "test" / "issue_3", 1_700_300_000.0, "PetSite", "x")
    assert [r.case_id for r in discover(only_test)] == ["low_traffic/test/issue_3"]


# --- Nezha -------------------------------------------------------------------------------------


def test_nezha_service_is_the_pod_without_its_last_two_segments():
    assert nezha.service_of("ts-order-service-5b67c48447-mv5hb") == "ts-order-service"
    assert nezha.service_of("frontend-579b9bff58-t2dbm") == "frontend"


def test_nezha_days_become_two_datasets_never_pooled():
    refs = discover(NEZHA)
    assert [(r.dataset, r.case_id) for r in refs] == [
        ("nezha-ob", "2022-08-22T04:02:07"),
        ("nezha-ob", "2022-08-22T04:10:20"),
        ("nezha-tt", "2023-01-29T08:43:04"),
        ("nezha-tt", "2023-01-29T08:52:06"),
    ]
    # Any folder inside the dataset that still holds whole days works too.
    assert len(discover(NEZHA / "rca_data" / "2023-01-29")) == 2


def test_nezha_inject_time_is_utc_and_the_window_stops_before_the_next_fault():
    first, second = (load_case(r) for r in discover(NEZHA, case_glob="2023-01-29*"))
    # inject_time, read as UTC; inject_timestamp (8 hours off on this day) is ignored.
    assert first.incident.alert_time.timestamp() == _utc("2023-01-29 08:43:04")
    assert first.incident.window.end_s < _utc("2023-01-29 08:52:06")
    assert first.incident.window.end_s == pytest.approx(_utc("2023-01-29 08:52:05"), abs=1e-3)
    # The first fault has hardly any history: the window starts at the first metric row.
    assert first.incident.window.start_s == 1674981669
    assert second.incident.window.end_s == pytest.approx(_utc("2023-01-29 09:02:06"), abs=1e-3)
    assert first.truth.service == "ts-contacts-service"
    assert first.truth.fault_type is FaultType.ERRORS_CODE and first.truth.fault_label == "return"
    for rec in (first, second):
        lo, hi = rec.incident.window.start_s, rec.incident.window.end_s
        assert all(lo <= t <= hi for m in rec.metrics for t in m.timestamps)
        assert all(lo <= r.timestamp <= hi for r in rec.logs)
        assert all(lo <= s.start <= hi for s in rec.spans)


def test_nezha_train_ticket_logs_spans_and_call_graph_from_traces():
    rec = load_case(discover(NEZHA, case_glob="2023-01-29T08:43:04")[0])
    services = {m.service for m in rec.metrics}
    assert services == {"ts-contacts-service", "ts-auth-service", "ts-gateway-service"}
    assert rec.logs and rec.spans
    assert [r.timestamp for r in rec.logs] == sorted(r.timestamp for r in rec.logs)
    log = next(r for r in rec.logs if r.timestamp == pytest.approx(1674981742.383150913, abs=1e-4))
    assert log.service == "ts-travel-service" and log.level == "info"
    assert log.message.startswith("16:42:22.382 INFO") and not log.message.endswith("\n")
    span = next(s for s in rec.spans if s.parent_id is None)
    assert span.service == "ts-gateway-service" and span.duration_ms == pytest.approx(318.316)
    assert Edge(caller="ts-gateway-service", callee="ts-auth-service") in rec.topology.edges
    assert Edge(caller="ts-auth-service", callee="ts-verification-code-service") in rec.topology.edges
    kinds = {m.signal: m.kind for m in rec.metrics}
    assert kinds["memory_mebibytes"] is SignalKind.MEMORY
    assert kinds["server_latency_p99_seconds"] is SignalKind.LATENCY
    assert kinds["success_rate_percent"] is SignalKind.ERRORS


def test_nezha_online_boutique_call_graph_from_dependency_csv():
    rec = load_case(discover(NEZHA, case_glob="2022-08-22T04:10:20")[0])
    assert Edge(caller="frontend", callee="checkoutservice") in rec.topology.edges
    assert rec.truth.fault_type is FaultType.CPU and rec.truth.service == "frontend"
    # 30 minutes before the injection is before the recording began: the first metric row.
    assert rec.incident.window.start_s == 1661140279
    assert rec.incident.window.end_s == pytest.approx(_utc("2022-08-22 04:20:20"), abs=1e-3)


def test_nezha_online_boutique_call_edges_from_source_50():
    rec = load_case(discover(NEZHA, case_glob="2022-08-22T04:10:20")[0])
    edges = {(m.service, m.peer): m for m in rec.metrics if m.peer is not None}
    # the fixture keeps frontend's edges; every callee is a service of the day, or an outside host
    assert ("frontend", "cartservice") in edges and ("frontend", "checkoutservice") in edges
    assert all(caller == "frontend" for caller, _ in edges)
    series = edges[("frontend", "cartservice")]
    assert series.signal == nezha.EDGE_SIGNAL and series.kind is SignalKind.LATENCY
    assert series.id == "metric:frontend->cartservice:call_latency_p50_seconds"
    # the same minutes as the pod metrics, previous faults left out alike
    pod = next(m for m in rec.metrics if m.service == "frontend" and m.peer is None)
    assert len(series.timestamps) == pytest.approx(len(pod.timestamps), abs=1)
    assert 0.0 < series.values[0] < 1.0


def test_nezha_edge_columns_split_at_a_known_caller():
    services = {"frontend", "checkoutservice"}
    assert edge_of("frontend_cartservice", services) == ("frontend", "cartservice")
    assert edge_of("checkoutservice_email_v2", services) == ("checkoutservice", "email_v2")
    assert edge_of("unknown_cartservice", services) is None


def test_nezha_earlier_faults_are_left_out_of_the_normal_period():
    rec = load_case(discover(NEZHA, case_glob="2022-08-22T04:10:20")[0])
    previous = _utc("2022-08-22 04:02:07")
    gap_end = previous + nezha.RECOVERY_MARGIN.total_seconds()
    # The window still starts at the first metric row, but the minutes right after the previous
    # injection are a gap in every series, and in the spans and logs too.
    for m in rec.metrics:
        assert m.timestamps[0] < previous
        assert not any(previous <= t < gap_end for t in m.timestamps)
        assert any(gap_end <= t < rec.incident.alert_time.timestamp() for t in m.timestamps)
    assert not any(previous <= s.start < gap_end for s in rec.spans)
    assert not any(previous <= r.timestamp < gap_end for r in rec.logs)
    # The first fault of the day keeps all its (short) history.
    first = load_case(discover(NEZHA, case_glob="2022-08-22T04:02:07")[0])
    stamps = first.metrics[0].timestamps
    assert stamps[0] == first.incident.window.start_s and len(stamps) >= 10


# --- Sock Shop (synthetic: no Sock Shop data may be committed) -----------------------------------


def _sockshop_run(root: Path, name: str, normal_start: int, anomalous_start: int, rows: int = 20) -> Path:
    run = root / name / "1"
    run.mkdir(parents=True)
    header = ["time", "carts_cpu", "carts-db_cpu", "carts_mem", "front-end_cpu", "carts_lat_90"]
    for file, start, level in (("normal.csv", normal_start, 1.0), ("anomalous.csv", anomalous_start, 5.0)):
        with (run / file).open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for i in range(rows):
                writer.writerow([start + i, level + i % 3, 2.0, 300e6 + i, 10.0, 0.01])
    return run


def test_sockshop_normal_rows_are_shifted_and_the_alert_is_the_first_anomalous_row(tmp_path):
    _sockshop_run(tmp_path, "carts-cpu", 1_000_000, 1_500_000)
    assert detect_format(tmp_path) == "sockshop-rcd"
    (ref,) = discover(tmp_path)
    assert ref.case_id == "carts-cpu/1"
    rec = load_case(ref)
    assert rec.incident.alert_time.timestamp() == 1_500_000
    stamps = rec.metrics[0].timestamps
    assert stamps[19] == 1_499_999 and stamps[20] == 1_500_000 and stamps[0] == 1_499_980
    assert rec.truth.service == "carts" and rec.truth.fault_type is FaultType.CPU
    # The database container belongs to its service.
    signals = {(m.service, m.signal) for m in rec.metrics}
    assert ("carts", "db_cpu_usage") in signals and ("carts", "memory_bytes") in signals
    assert ("front-end", "cpu_usage") in signals
    assert "carts" not in rec.incident.id and "carts" not in rec.incident.title


def test_sockshop_memory_fault_type(tmp_path):
    _sockshop_run(tmp_path, "user-mem", 0, 100)
    rec = load_case(discover(tmp_path)[0])
    assert rec.truth.fault_type is FaultType.MEMORY and rec.truth.fault_label == "mem"
    assert sockshop.FORMAT == "sockshop-rcd" and petshop.FORMAT == "petshop"

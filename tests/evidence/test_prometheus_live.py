"""The Prometheus source and ``opsagent record`` against a real Prometheus (``tests/support/demo_prometheus.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from opsagent.analysis.calls import stopped_calls
from opsagent.cli import app
from opsagent.config import PrometheusSettings, Settings
from opsagent.domain import Investigation, RecordedIncident, SignalKind
from opsagent.evals.native import load_native
from opsagent.evals.replay import ReplayMetrics, replay_sources
from opsagent.evidence.base import EvidenceSource, collect
from opsagent.evidence.embeddings import HashingEmbedding
from opsagent.evidence.prometheus import PrometheusSource
from opsagent.evidence.runbook_index import RunbookIndex
from opsagent.evidence.runbooks import load_runbooks
from opsagent.factory import build_services
from opsagent.pipeline import investigate

from ..support.demo_prometheus import DEMOS, INCIDENTS, ROOT, SILENT_EDGE, LivePrometheus, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> RunbookIndex:
    books = load_runbooks(ROOT / "runbooks")
    return RunbookIndex(books, HashingEmbedding(), chroma_path=tmp_path_factory.mktemp("chroma"))


def run(recording: RecordedIncident, sources: list[EvidenceSource], index: RunbookIndex) -> Investigation:
    settings = Settings(runbooks_dir=ROOT / "runbooks", embedding="hashing")
    return investigate(recording.incident, build_services(settings, sources, index=index))


def top_cause(inv: Investigation) -> tuple[str, str]:
    assert inv.findings.root_causes, inv.gaps
    cause = inv.findings.root_causes[0]
    return cause.service, cause.fault_type.value


@pytest.mark.parametrize("demo", DEMOS)
def test_live_investigation_matches_the_recording(
    demo: str, prometheus: LivePrometheus, index: RunbookIndex
) -> None:
    recording = prometheus.recordings[demo]
    recorded = run(recording, replay_sources(recording), index)
    live_sources: list[EvidenceSource] = [
        PrometheusSource(prometheus.settings),
        *(s for s in replay_sources(recording) if not isinstance(s, ReplayMetrics)),
    ]
    live = run(recording, live_sources, index)
    assert not [g for g in live.gaps if g.source == "metrics"]
    assert live.evidence.metrics == recorded.evidence.metrics
    # Whether the engine is right is the evaluation's business; here live must equal recorded.
    assert top_cause(live) == top_cause(recorded)


def test_series_carry_service_kind_and_unit(prometheus: LivePrometheus) -> None:
    recording = prometheus.recordings[DEMOS[0]]
    got = PrometheusSource(prometheus.settings).collect(recording.incident).metrics
    recorded = {(s.service, s.signal): s for s in recording.metrics}
    assert {(s.service, s.signal) for s in got} == set(recorded)
    for series in got:
        twin = recorded[(series.service, series.signal)]
        assert (series.kind, series.unit) == (twin.kind, twin.unit)
        assert series.timestamps == sorted(series.timestamps)
        assert recording.incident.window.start_s <= series.timestamps[0]


def test_call_edge_series_keep_their_peer_and_show_the_stopped_calls(prometheus: LivePrometheus) -> None:
    recording = prometheus.recordings[DEMOS[0]]
    query = 'sum by (service, peer) (demo_call_rate_per_second{namespace=~"{namespace}"})'
    got = PrometheusSource(prometheus.settings).run_queries(
        recording.incident, {"call_rate_per_second": query}
    )
    assert not got.gaps
    edges = {(s.service, s.peer) for s in got.metrics}
    assert edges == {(e.caller, e.callee) for e in recording.topology.edges}
    assert all(s.signal == "call_rate_per_second" and s.kind is SignalKind.TRAFFIC for s in got.metrics)
    assert recording.incident.alert_time is not None
    alert = recording.incident.alert_time.timestamp()
    found = stopped_calls(got.metrics, (recording.incident.window.start_s, alert), (alert, alert + 300.0))
    assert [(p.service, p.key) for p in found] == [SILENT_EDGE]


def test_a_promql_error_is_reported_as_such(prometheus: LivePrometheus) -> None:
    signals = dict(prometheus.settings.signals)
    signals["error_ratio"] = "sum by (service) (rate(demo_error_ratio[5m]"
    source = PrometheusSource(prometheus.settings.model_copy(update={"signals": signals}))
    recording = prometheus.recordings[DEMOS[0]]
    bundle = collect(recording.incident, [source])
    gaps = [g.reason for g in bundle.gaps]
    assert len(gaps) == 1, gaps
    assert gaps[0].startswith("signal error_ratio: HTTP 400: bad_data:"), gaps
    assert "parse error" in gaps[0]
    assert bundle.metrics and "error_ratio" not in {m.signal for m in bundle.metrics}


def test_every_query_failing_fails_the_source(prometheus: LivePrometheus) -> None:
    settings = prometheus.settings.model_copy(update={"signals": {"bad": "rate(x[5m]"}})
    bundle = collect(prometheus.recordings[DEMOS[0]].incident, [PrometheusSource(settings)])
    assert [g.source for g in bundle.gaps] == ["metrics"]
    assert "every query failed" in bundle.gaps[0].reason and "bad_data" in bundle.gaps[0].reason


def test_an_unreachable_prometheus_is_a_gap() -> None:
    settings = PrometheusSettings(url=f"http://127.0.0.1:{free_port()}", retries=1, timeout_seconds=2)
    recording = load_native(INCIDENTS / DEMOS[0])
    bundle = collect(recording.incident, [PrometheusSource(settings)])
    assert not bundle.metrics
    assert len(bundle.gaps) == 1
    assert "cannot connect" in bundle.gaps[0].reason


def test_record_round_trips_into_the_same_investigation(
    prometheus: LivePrometheus, index: RunbookIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = INCIDENTS / DEMOS[0]
    recording = prometheus.recordings[DEMOS[0]]
    spec = yaml.safe_load((demo / "incident.yaml").read_text())
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(spec["alert"]))
    config = tmp_path / "opsagent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "prometheus": {"url": prometheus.url, "signals": prometheus.settings.signals},
                "logs_dir": str(demo / "logs"),
                "data_dir": str(tmp_path / "data"),
            }
        )
    )
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", str(config))
    out = tmp_path / "recorded"
    # The demo window is 08:00-10:00 around an alert at 09:35: 1h35m before, 25m after covers it.
    result = CliRunner().invoke(
        app,
        [
            "record",
            "--alert", str(alert),
            "--out", str(out),
            "--before", "1h35m",
            "--after", "25m",
            "--topology", str(demo / "topology.yaml"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recorded" in result.output

    again = load_native(out)
    assert again.incident.alert_names == recording.incident.alert_names
    assert {m.service for m in again.metrics} == {m.service for m in recording.metrics}
    assert len(again.logs) > 0.9 * len(recording.logs)
    assert top_cause(run(again, replay_sources(again), index)) == top_cause(
        run(recording, replay_sources(recording), index)
    )

    # A second run refuses to overwrite what was recorded.
    result = CliRunner().invoke(app, ["record", "--alert", str(alert), "--out", str(out)])
    assert result.exit_code != 0 and "not empty" in result.output

    # Once the cause is known, the recording is a regression case for `opsagent eval`.
    truth = recording.truth
    assert truth is not None and truth.fault_type is not None
    case = tmp_path / "cases" / "recorded-live"
    result = CliRunner().invoke(
        app,
        [
            "record",
            "--alert", str(alert),
            "--out", str(case),
            "--before", "1h35m",
            "--after", "25m",
            "--topology", str(demo / "topology.yaml"),
            "--root-cause", truth.service,
            "--fault-type", truth.fault_type.value,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_native(case).truth == truth.model_copy(update={"runbook": None, "actions": []})
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", str(case.parent), "--json", str(report)])
    assert result.exit_code == 0, result.output
    [scored] = json.loads(report.read_text())["cases"]
    assert scored["truth"]["service"] == truth.service
    assert scored["rank_of_truth"] == 1, scored["ranking"]
    result = CliRunner().invoke(
        app, ["record", "--alert", str(alert), "--out", str(tmp_path / "x"), "--fault-type", "cpu"]
    )
    assert result.exit_code != 0 and "--root-cause" in result.output


def test_record_without_a_live_source_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", str(tmp_path / "none.yaml"))
    for name in ("OPSAGENT_PROMETHEUS__URL", "OPSAGENT_LOKI__URL", "OPSAGENT_LOGS_DIR"):
        monkeypatch.delenv(name, raising=False)
    spec = yaml.safe_load((INCIDENTS / DEMOS[0] / "incident.yaml").read_text())
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(spec["alert"]))
    result = CliRunner().invoke(app, ["record", "--alert", str(alert), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "OPSAGENT_PROMETHEUS__URL" in result.output


def test_the_default_catalogue_is_valid_promql(prometheus: LivePrometheus) -> None:
    # The demo data has none of these metrics: every query must parse and come back empty.
    source = PrometheusSource(PrometheusSettings(url=prometheus.url))
    bundle = collect(prometheus.recordings[DEMOS[0]].incident, [source])
    assert bundle.gaps == []
    assert bundle.metrics == []

"""Call-edge series in the native format: written as ``<signal>-><callee>`` columns and read back."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from opsagent.domain import MetricSeries, SignalKind
from opsagent.evals.native import column_name, load_native, signal_and_peer
from opsagent.evals.native_writer import write_recording
from opsagent.evals.replay import replay_sources
from opsagent.evidence.base import collect

DEMO = Path(__file__).resolve().parents[2] / "examples" / "incidents" / "db-pool-exhaustion"


def test_column_names_of_edge_series() -> None:
    assert column_name("call_rate_per_second", "inventory") == "call_rate_per_second->inventory"
    assert column_name("cpu_usage_cores", None) == "cpu_usage_cores"
    assert signal_and_peer("call_rate_per_second->inventory") == ("call_rate_per_second", "inventory")
    assert signal_and_peer("cpu_usage_cores") == ("cpu_usage_cores", None)
    # a dangling mark is not an edge: the column stays a plain signal
    assert signal_and_peer("odd->") == ("odd->", None)


def test_edge_series_round_trip_through_write_recording(tmp_path: Path) -> None:
    rec = load_native(DEMO)
    bundle = collect(rec.incident, replay_sources(rec))
    stamps = bundle.metrics[0].timestamps
    caller = bundle.metrics[0].service
    values = [0.0 if i % 10 == 0 else 2.5 for i in range(len(stamps))]
    edges = [
        MetricSeries(
            service=caller,
            peer=peer,
            signal="call_rate_per_second",
            kind=SignalKind.TRAFFIC,
            timestamps=stamps,
            values=values,
        )
        for peer in ("inventory", "payments")
    ]
    bundle = bundle.model_copy(update={"metrics": [*bundle.metrics, *edges]})
    payload = yaml.safe_load((DEMO / "incident.yaml").read_text(encoding="utf-8"))["alert"]
    out = tmp_path / "recorded"
    write_recording(out, rec.incident, payload, bundle, DEMO / "topology.yaml")
    header = (out / "metrics" / f"{caller}.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "call_rate_per_second->inventory" in header.split(",")
    again = load_native(out)
    got = {s.peer: s for s in again.metrics if s.peer is not None}
    assert set(got) == {"inventory", "payments"}
    for series in got.values():
        assert series.service == caller and series.signal == "call_rate_per_second"
        assert series.kind is SignalKind.TRAFFIC
        assert series.timestamps == stamps
        assert all(math.isclose(a, b) for a, b in zip(series.values, values, strict=True))
    # the plain signals are unchanged
    plain = {(s.service, s.signal) for s in again.metrics if s.peer is None}
    assert plain == {(s.service, s.signal) for s in rec.metrics}

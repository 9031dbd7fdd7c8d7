"""Channel calibration: channels compared by how exceptional a service is in each, not by raw scale."""

from __future__ import annotations

from opsagent.analysis.engine import _calibrate, _combine, _ServiceEvidence


def _evidence(rows: dict[str, dict[str, float]]) -> dict[str, _ServiceEvidence]:
    return {svc: _ServiceEvidence(channels=dict(channels)) for svc, channels in rows.items()}


def test_metric_only_incident_is_unchanged() -> None:
    rows = {f"s{i}": {"metric": float(i), "pattern": 0.0} for i in range(6)}
    evidence = _evidence(rows)
    _calibrate(evidence)
    assert {svc: ev.channels for svc, ev in evidence.items()} == rows


def test_lone_pattern_outlier_beats_several_metric_outliers() -> None:
    # metric noise: three services at 4-5 on the log scale, the rest near 0; one service alone
    # with a strong pattern shift (~2 on the log scale, ~6 sd)
    rows = {f"quiet{i}": {"metric": 0.2 + 0.05 * i, "pattern": 0.0} for i in range(10)}
    rows |= {f"noisy{i}": {"metric": 4.0 + 0.3 * i, "pattern": 0.0} for i in range(3)}
    rows["culprit"] = {"metric": 0.3, "pattern": 2.0}
    raw = {svc: _combine(ch) for svc, ch in rows.items()}
    assert max(raw, key=lambda s: raw[s]) == "noisy2"
    evidence = _evidence(rows)
    _calibrate(evidence)
    calibrated = {svc: _combine(ev.channels) for svc, ev in evidence.items()}
    assert max(calibrated, key=lambda s: calibrated[s]) == "culprit"
    # the metric channel is the reference and keeps its values
    assert evidence["noisy2"].channels["metric"] == rows["noisy2"]["metric"]


def test_channel_where_all_services_look_alike_lifts_nobody() -> None:
    rows = {f"s{i}": {"metric": 1.0 + 0.1 * i, "pattern": 1.5} for i in range(8)}
    evidence = _evidence(rows)
    _calibrate(evidence)
    lifted = {svc: ev.channels["pattern"] for svc, ev in evidence.items()}
    assert max(lifted.values()) - min(lifted.values()) < 1e-9

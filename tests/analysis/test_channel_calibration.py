"""Channel calibration: channels compared by how exceptional a service is in each, not by raw scale."""

from __future__ import annotations

from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.weigh import Channels, calibrate, combine, weigh_by_concentration


def _evidence(rows: dict[str, Channels]) -> dict[str, Channels]:
    return {svc: dict(channels) for svc, channels in rows.items()}


def test_metric_only_incident_is_unchanged() -> None:
    rows = {f"s{i}": {"metric": float(i), "pattern": 0.0} for i in range(6)}
    evidence = _evidence(rows)
    calibrate(evidence)
    assert evidence == rows


def test_lone_pattern_outlier_beats_several_metric_outliers() -> None:
    # metric noise: three services at 4-5 on the log scale, the rest near 0; one service alone
    # with a strong pattern shift (~2 on the log scale, ~6 sd)
    rows = {f"quiet{i}": {"metric": 0.2 + 0.05 * i, "pattern": 0.0} for i in range(10)}
    rows |= {f"noisy{i}": {"metric": 4.0 + 0.3 * i, "pattern": 0.0} for i in range(3)}
    rows["culprit"] = {"metric": 0.3, "pattern": 2.0}
    raw = {svc: combine(ch) for svc, ch in rows.items()}
    assert max(raw, key=lambda s: raw[s]) == "noisy2"
    evidence = _evidence(rows)
    calibrate(evidence)
    calibrated = {svc: combine(ch) for svc, ch in evidence.items()}
    assert max(calibrated, key=lambda s: calibrated[s]) == "culprit"
    # the metric channel is the reference and keeps its values
    assert evidence["noisy2"]["metric"] == rows["noisy2"]["metric"]


def test_channel_where_all_services_look_alike_lifts_nobody() -> None:
    rows = {f"s{i}": {"metric": 1.0 + 0.1 * i, "pattern": 1.5} for i in range(8)}
    evidence = _evidence(rows)
    calibrate(evidence)
    lifted = {svc: ch["pattern"] for svc, ch in evidence.items()}
    assert max(lifted.values()) - min(lifted.values()) < 1e-9


def test_concentration_shrinks_a_channel_spread_over_many_services() -> None:
    # metric evidence on eight services alike (something is wrong somewhere), pattern evidence on
    # one: the pattern channel keeps its values, the metric channel shrinks by 1/8 over 1/1
    rows = {f"s{i}": {"metric": 4.0, "pattern": 0.0} for i in range(8)}
    rows["s3"]["pattern"] = 3.0
    evidence = _evidence(rows)
    weigh_by_concentration(evidence)
    assert evidence["s3"]["pattern"] == 3.0
    assert evidence["s0"]["metric"] == 4.0 / 8
    assert max(evidence, key=lambda s: combine(evidence[s])) == "s3"


def test_concentration_leaves_a_single_channel_incident_alone() -> None:
    rows = {f"s{i}": {"metric": float(i)} for i in range(5)}
    evidence = _evidence(rows)
    weigh_by_concentration(evidence)
    assert evidence == rows


def test_callers_of_an_outlier_do_not_dilute_the_reference_channel() -> None:
    # a CPU-starved service (metric 4.8) and two of its callers waiting on it (3.6, 3.2) stand out
    # in the metric channel; another service stands out alone in the trace channel (2.3). Counted
    # as three metric outliers, the lone trace outlier is mapped at three times its spread and
    # outranks the starved service; its callers are the same fault, one independent outlier.
    rows = {f"quiet{i}": {"metric": 0.3 + 0.05 * i, "trace": 0.0} for i in range(12)}
    rows["starved"] = {"metric": 4.8, "trace": 0.0}
    rows["caller_a"] = {"metric": 3.6, "trace": 0.0}
    rows["caller_b"] = {"metric": 3.2, "trace": 0.0}
    rows["elsewhere"] = {"metric": 0.6, "trace": 2.3}
    callees = {"caller_a": {"starved"}, "caller_b": {"caller_a", "starved"}, "elsewhere": {"quiet0"}}

    counted = _evidence(rows)
    calibrate(counted)
    assert combine(counted["elsewhere"]) > combine(counted["starved"])

    independent = _evidence(rows)
    calibrate(independent, callees=callees)
    assert combine(independent["starved"]) > combine(independent["elsewhere"])
    # the reference channel is unchanged either way
    assert independent["caller_a"]["metric"] == rows["caller_a"]["metric"]


def test_independent_outliers_is_a_switch() -> None:
    assert DEFAULT_OPTIONS.weigh.independent_outliers
    assert not DEFAULT_OPTIONS.with_(independent_outliers=False).weigh.independent_outliers

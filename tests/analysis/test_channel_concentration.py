"""Channel concentration: a channel whose evidence sits on one service says where, one spread over
many says only that something is wrong (``weigh.weigh_by_concentration``)."""

from __future__ import annotations

from opsagent.analysis.weigh import Channels, combine, weigh_by_concentration


def _evidence(rows: dict[str, Channels]) -> dict[str, Channels]:
    return {svc: dict(channels) for svc, channels in rows.items()}


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

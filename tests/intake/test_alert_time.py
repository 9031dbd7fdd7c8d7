"""The alert time of a delivery is its earliest firing alert's: the resolved alerts a delivery also
carries may be an earlier firing of the group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsagent.intake import incident_from_alertmanager, parse_alertmanager

NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def alert(fingerprint: str, starts: datetime, status: str) -> dict[str, object]:
    ends = (starts + timedelta(minutes=5)).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z"
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "service": "payments"},
        "startsAt": starts.isoformat(),
        "endsAt": ends,
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, object]) -> dict[str, object]:
    return {"version": "4", "groupKey": "g", "status": "firing", "alerts": list(alerts)}


def test_a_resolved_alert_of_an_earlier_firing_does_not_date_the_delivery() -> None:
    raw = payload(alert("old", NOW - timedelta(hours=1), "resolved"), alert("new", NOW, "firing"))
    incident = incident_from_alertmanager(parse_alertmanager(raw))
    assert incident.alert_time == NOW
    assert incident.window.start == NOW - timedelta(hours=2)


def test_an_all_resolved_delivery_is_dated_by_its_alerts() -> None:
    raw = payload(alert("a", NOW - timedelta(minutes=9), "resolved"), alert("b", NOW, "resolved"))
    incident = incident_from_alertmanager(parse_alertmanager(raw))
    assert incident.alert_time == NOW - timedelta(minutes=9)

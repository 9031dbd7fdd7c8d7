"""End to end with a real Alertmanager: an alert posted to Alertmanager ends as an incident with
findings, readable through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from .conftest import WEBHOOK_TOKEN, auth, wait_until

pytestmark = pytest.mark.integration


def test_alert_through_alertmanager_becomes_an_investigated_incident(
    make_settings, live_server, alertmanager
):
    server = live_server(make_settings())
    am = alertmanager(f"{server.url}/v1/alerts/alertmanager", WEBHOOK_TOKEN)
    alert = {
        "labels": {
            "alertname": "HighErrorRate",
            "service": "checkout",
            "namespace": "shop",
            "severity": "critical",
        },
        "annotations": {"summary": "checkout 5xx ratio > 5%"},
        "startsAt": datetime.now(UTC).isoformat(),
        "generatorURL": "http://prometheus.local/graph",
    }
    posted = httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=10)
    assert posted.status_code == 200, posted.text

    def incident() -> dict | None:
        page = httpx.get(f"{server.url}/v1/incidents", headers=auth("viewer"), timeout=10).json()
        return page["items"][0] if page["items"] else None

    found = wait_until(incident, timeout=30, what="the incident from Alertmanager")
    assert found["origin"] == "alertmanager" and found["service"] == "checkout"
    assert 'alertname="HighErrorRate"' in found["group_key"]

    def investigated() -> dict | None:
        detail = httpx.get(
            f"{server.url}/v1/incidents/{found['id']}", headers=auth("viewer"), timeout=10
        ).json()
        return detail if detail["findings"] is not None else None

    detail = wait_until(investigated, timeout=60, what="findings")
    assert detail["alerts"][0]["labels"]["alertname"] == "HighErrorRate"
    assert detail["findings"]["summary"] and detail["runbooks"]
    report = httpx.get(f"{server.url}/v1/incidents/{found['id']}/report", headers=auth("viewer"))
    assert report.status_code == 200 and "HighErrorRate" in report.text

    # A second alert of the group: Alertmanager sends the whole group again, the first alert included.
    second = {**alert, "labels": {**alert["labels"], "pod": "checkout-2"}}
    assert httpx.post(f"{am}/api/v2/alerts", json=[second], timeout=10).status_code == 200

    def both() -> dict | None:
        detail = httpx.get(
            f"{server.url}/v1/incidents/{found['id']}", headers=auth("viewer"), timeout=10
        ).json()
        return detail if len(detail["alerts"]) == 2 else None

    detail = wait_until(both, timeout=30, what="the second alert")
    assert len(detail["investigations"]) == 1
    assert httpx.get(f"{server.url}/v1/incidents", headers=auth("viewer")).json()["total"] == 1
    assert 'opsagent_alerts_total{result="duplicate"} 1.0' in httpx.get(f"{server.url}/metrics").text

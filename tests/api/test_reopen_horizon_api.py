"""The reopen horizon through the webhook and the incidents API (SQLite and PostgreSQL): Alertmanager
deliveries of one group that fires, resolves and fires again within ``incidents.reopen_within_minutes``
reopen the incident; after the horizon the group opens a new incident, investigated on its own, and
the API and the report's notes say which happened and why. Redelivery creates nothing."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .conftest import WEBHOOK_TOKEN, auth, wait_until

pytestmark = pytest.mark.integration

GROUP_KEY = '{}:{alertname="HighErrorRate", service="checkout"}'
# Six seconds: a delivery right after the resolution falls inside it, one after a pause beyond it.
HORIZON_MINUTES = 0.1


def payload(fingerprint: str, starts: datetime, *, resolved: bool = False) -> dict[str, Any]:
    labels = {"alertname": "HighErrorRate", "service": "checkout", "namespace": "shop"}
    alert = {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": {"summary": "checkout 5xx ratio > 5%"},
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(seconds=30)).isoformat() if resolved else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    return {
        "version": "4",
        "groupKey": GROUP_KEY,
        "status": alert["status"],
        "receiver": "opsagent",
        "alerts": [alert],
        "groupLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonLabels": labels,
    }


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_webhook_reopens_within_the_horizon_and_opens_a_new_incident_beyond_it(
    database: str, request: pytest.FixtureRequest, make_settings, live_server
) -> None:
    url = request.getfixturevalue("fresh_pg") if database == "postgresql" else None
    settings = make_settings(
        database_url=url, worker_mode="thread", incidents={"reopen_within_minutes": HORIZON_MINUTES}
    )
    server = live_server(settings, sources=[])
    hook = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}

    def deliver(body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{server.url}/v1/alerts/alertmanager", json=body, headers=hook, timeout=10)
        assert response.status_code == 202, response.text
        accepted: dict[str, Any] = response.json()
        return accepted

    def incident(incident_id: str) -> dict[str, Any]:
        response = httpx.get(f"{server.url}/v1/incidents/{incident_id}", headers=auth("viewer"), timeout=10)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def investigated(incident_id: str, count: int) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            d = incident(incident_id)
            invs = d["investigations"]
            ready = len(invs) == count and all(i["status"] == "done" for i in invs)
            return d if ready and d["findings"] else None

        found: dict[str, Any] = wait_until(done, timeout=60, what=f"{count} investigations of {incident_id}")
        return found

    now = datetime.now(UTC).replace(microsecond=0)
    (first,) = deliver(payload("a1", now - timedelta(minutes=3)))["incident_ids"]
    investigated(first, 1)
    deliver(payload("a1", now - timedelta(minutes=3), resolved=True))
    # Right after the resolution: within the horizon, episode 2 of the same incident.
    assert deliver(payload("a2", now - timedelta(minutes=2)))["incident_ids"] == [first]
    reopened = incident(first)
    assert (reopened["episode"], reopened["follows"]) == (2, None)
    assert "within the 0.1 min reopen horizon" in reopened["episode_reason"]
    investigated(first, 2)

    deliver(payload("a2", now - timedelta(minutes=2), resolved=True))
    time.sleep(HORIZON_MINUTES * 60 + 0.5)
    fresh = payload("a3", now - timedelta(minutes=1))
    accepted = deliver(fresh)
    (second,) = accepted["incident_ids"]
    assert second != first and len(accepted["investigation_ids"]) == 1
    # Alertmanager sends the group again (its repeat interval, a retry): nothing new is stored.
    again = deliver(fresh)
    assert (again["incident_ids"], again["accepted"], again["duplicates"]) == ([second], 0, 1)
    assert not again["investigation_ids"]

    new = investigated(second, 1)
    assert (new["episode"], new["follows"], new["status"]) == (1, first, "open")
    assert [a["fingerprint"] for a in new["alerts"]] == ["a3"]
    assert new["episode_reason"].startswith("its alert group last resolved ")
    assert new["episode_reason"].endswith("ago, beyond the 0.1 min reopen horizon")
    notes = " ".join(new["findings"]["notes"])
    assert "A new incident: its alert group last resolved" in notes
    assert f"so it starts a new incident rather than reopening {first}" in notes
    old = incident(first)
    assert (old["status"], old["episode"], len(old["investigations"])) == ("resolved", 2, 2)
    page = httpx.get(f"{server.url}/v1/incidents", headers=auth("viewer"), timeout=10).json()
    assert page["total"] == 2

    # The console's incident page says the same as the report's note, and links the previous incident.
    with httpx.Client(base_url=server.url, timeout=10) as console:
        nonce = re.search(r'name="nonce" value="([^"]+)"', console.get("/login").text)
        assert nonce is not None
        signed = console.post("/login", data={"nonce": nonce.group(1), "token": "test-viewer-token"})
        assert signed.status_code == 303, signed.text
        shown = console.get(f"/incidents/{second}")
        assert shown.status_code == 200, shown.text
        line = re.search(r'<p class="meta" id="episode">(.*?)</p>', shown.text, re.S)
        assert line is not None, shown.text
        assert "A new incident: its alert group last resolved" in line.group(1)
        assert f'href="/incidents/{first}"' in line.group(1)
        reopened_page = console.get(f"/incidents/{first}").text
        assert "Episode 2 of a reopened incident" in reopened_page

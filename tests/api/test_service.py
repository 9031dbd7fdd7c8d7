"""The service against SQLite and PostgreSQL: webhook, idempotence under concurrency, autonomy, auth,
bad input, reports, chat."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import WEBHOOK_TOKEN, auth, fixture_payload, wait_until

WEBHOOK = "/v1/alerts/alertmanager"
HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def post_alerts(base: str, payload: object, **kw: object) -> httpx.Response:
    return httpx.post(base + WEBHOOK, json=payload, headers=HOOK, timeout=30, **kw)  # type: ignore[arg-type]


def wait_done(base: str, incident_id: str) -> dict:
    def done() -> dict | None:
        detail = httpx.get(f"{base}/v1/incidents/{incident_id}", headers=auth("viewer"), timeout=10).json()
        return detail if detail["findings"] is not None else None

    return wait_until(done, timeout=60, what=f"findings for {incident_id}")


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, make_settings, live_server):
    overrides = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("fresh_pg")
    return live_server(make_settings(**overrides))


def test_webhook_groups_dedupes_resolves_and_investigates(server):
    base = server.url
    firing = fixture_payload("01-firing-HighErrorRate.json")
    first = post_alerts(base, firing)
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0 and len(body["investigation_ids"]) == 1
    incident_id = body["incident_ids"][0]

    again = post_alerts(base, firing).json()
    assert again == {
        **again,
        "incident_ids": [incident_id],
        "accepted": 0,
        "duplicates": 1,
        "investigation_ids": [],
    }

    other = post_alerts(base, fixture_payload("03-firing-PodOOMKilled.json")).json()
    assert other["incident_ids"] != [incident_id]

    detail = wait_done(base, incident_id)
    assert detail["status"] == "open" and len(detail["alerts"]) == 1
    assert detail["evidence"] is not None and detail["findings"]["reasoner"]
    assert [i["status"] for i in detail["investigations"]] == ["done"]
    assert {e["event"] for e in detail["audit"]} >= {
        "alert_received",
        "investigation_queued",
        "investigation_done",
    }

    resolved = post_alerts(base, fixture_payload("02-resolved-HighErrorRate.json")).json()
    assert resolved["resolved"] == 1 and resolved["incident_ids"] == [incident_id]
    detail = httpx.get(f"{base}/v1/incidents/{incident_id}", headers=auth("viewer")).json()
    assert detail["status"] == "resolved" and detail["alerts"][0]["status"] == "resolved"

    page = httpx.get(f"{base}/v1/incidents", params={"status": "resolved"}, headers=auth("viewer")).json()
    assert [i["id"] for i in page["items"]] == [incident_id] and page["total"] == 1
    page = httpx.get(f"{base}/v1/incidents", params={"limit": 1}, headers=auth("viewer")).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert (
        httpx.get(f"{base}/v1/incidents", params={"service": "checkout"}, headers=auth("viewer")).json()[
            "total"
        ]
        == 1
    )

    md = httpx.get(f"{base}/v1/incidents/{incident_id}/report", headers=auth("viewer"))
    assert md.status_code == 200 and md.text.startswith("# HighErrorRate")
    html = httpx.get(f"{base}/v1/incidents/{incident_id}/report?format=html", headers=auth("viewer"))
    assert html.headers["content-type"].startswith("text/html") and "<h1>" in html.text
    js = httpx.get(f"{base}/v1/incidents/{incident_id}/report?format=json", headers=auth("viewer")).json()
    assert js["incident"]["id"] == incident_id


def test_concurrent_duplicate_deliveries_store_once(server):
    """Many simultaneous deliveries of one alert, and of one group's alerts: one incident, one investigation."""
    payload = fixture_payload()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: post_alerts(server.url, payload), range(32)))
    assert all(a.status_code == 202 for a in answers)
    assert sum(a.json()["accepted"] for a in answers) == 1
    assert sum(len(a.json()["investigation_ids"]) for a in answers) == 1

    group = []
    for i in range(12):
        p = copy.deepcopy(payload)
        p["groupKey"] = '{}:{alertname="Storm"}'
        p["alerts"][0]["fingerprint"] = f"storm{i:04d}"
        group.append(p)
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda p: post_alerts(server.url, p), group * 2))
    assert {a.json()["incident_ids"][0] for a in answers} == {answers[0].json()["incident_ids"][0]}
    assert sum(a.json()["accepted"] for a in answers) == 12
    assert sum(a.json()["duplicates"] for a in answers) == 12
    assert sum(len(a.json()["investigation_ids"]) for a in answers) == 1
    detail = httpx.get(
        f"{server.url}/v1/incidents/{answers[0].json()['incident_ids'][0]}", headers=auth("viewer")
    )
    assert len(detail.json()["alerts"]) == 12 and len(detail.json()["investigations"]) == 1


def test_level_zero_records_only_until_a_person_asks(make_settings, live_server):
    server = live_server(make_settings(autonomy_level="L0"))
    body = post_alerts(server.url, fixture_payload()).json()
    assert body["investigation_ids"] == []
    incident_id = body["incident_ids"][0]
    url = f"{server.url}/v1/incidents/{incident_id}/investigate"
    assert httpx.post(url, headers=auth("viewer")).status_code == 403
    asked = httpx.post(url, headers=auth("responder"))
    assert asked.status_code == 202 and asked.json()["created"] is True
    detail = wait_done(server.url, incident_id)
    # L0: no investigation starts on its own, but one a person asks for is analysed in full.
    assert detail["findings"]["reasoner"] == "offline"
    assert any(n.startswith("L0:") for n in detail["findings"]["notes"])
    assert detail["investigations"][0]["requested_by"] == "responder"


def test_per_service_override_lowers_the_level(make_settings, live_server):
    server = live_server(make_settings(autonomy={"service_levels": {"checkout": "L0"}}))
    assert post_alerts(server.url, fixture_payload()).json()["investigation_ids"] == []
    assert post_alerts(server.url, fixture_payload("03-firing-PodOOMKilled.json")).json()["investigation_ids"]


def test_tokens_and_roles(make_settings, live_server):
    server = live_server(make_settings())
    base = server.url
    payload = fixture_payload()
    missing = httpx.post(base + WEBHOOK, json=payload)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (
        httpx.post(base + WEBHOOK, json=payload, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert (
        httpx.post(base + WEBHOOK, json=payload, headers={"Authorization": "Basic eDp5"}).status_code == 401
    )
    assert httpx.post(base + WEBHOOK, json=payload, headers=auth("viewer")).status_code == 403
    assert httpx.post(base + WEBHOOK, json=payload, headers=auth("responder")).status_code == 202

    assert httpx.get(f"{base}/v1/incidents").status_code == 401
    assert (
        httpx.get(f"{base}/v1/incidents", headers=HOOK).status_code == 401
    )  # the webhook token reads nothing
    assert httpx.get(f"{base}/v1/users", headers=auth("responder")).status_code == 403

    created = httpx.post(
        f"{base}/v1/users", json={"name": "dana", "role": "responder"}, headers=auth("admin")
    )
    assert created.status_code == 201
    token = created.json()["token"]
    me = httpx.get(f"{base}/v1/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"name": "dana", "role": "responder"}
    assert httpx.post(f"{base}/v1/users", json={"name": "dana"}, headers=auth("admin")).status_code == 409
    assert httpx.delete(f"{base}/v1/users/dana", headers=auth("admin")).status_code == 204
    assert httpx.get(f"{base}/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 422, "body"),
        (b"[]", 422, "body"),
        (json.dumps({**fixture_payload(), "version": "3"}).encode(), 422, "version"),
        (json.dumps({**fixture_payload(), "alerts": "many"}).encode(), 422, "alerts"),
        (json.dumps({**fixture_payload(), "alerts": []}).encode(), 422, "alerts"),
        (
            json.dumps({k: v for k, v in fixture_payload().items() if k != "groupKey"}).encode(),
            422,
            "groupKey",
        ),
        (
            json.dumps(
                {**fixture_payload(), "alerts": [{**fixture_payload()["alerts"][0], "startsAt": "yesterday"}]}
            ).encode(),
            422,
            "startsAt",
        ),
        # Alertmanager always sends RFC 3339 strings: a number is not silently read as Unix time.
        (
            json.dumps(
                {**fixture_payload(), "alerts": [{**fixture_payload()["alerts"][0], "startsAt": 5}]}
            ).encode(),
            422,
            "alerts.0.startsAt: Value error, must be an RFC 3339 timestamp",
        ),
        (
            json.dumps(
                {**fixture_payload(), "alerts": [{**fixture_payload()["alerts"][0], "endsAt": "1700000000"}]}
            ).encode(),
            422,
            "endsAt",
        ),
        # Go's zero time as a start: no investigation window exists around it (a 500 before)
        (
            json.dumps(
                {
                    **fixture_payload(),
                    "alerts": [{**fixture_payload()["alerts"][0], "startsAt": "0001-01-01T00:00:00Z"}],
                }
            ).encode(),
            422,
            "alerts.0.startsAt: Value error, must lie between 1970-01-01 and 2262-04-11",
        ),
        (json.dumps(fixture_payload()).encode(), 422, "Content-Type"),
    ],
)
def test_bad_input_is_a_4xx_with_a_reason(make_settings, live_server, body, status, says):
    server = live_server(make_settings())
    kept = post_alerts(server.url, fixture_payload()).json()["incident_ids"][0]
    # The last case: a valid payload sent as text/plain.
    content_type = "text/plain" if says == "Content-Type" else "application/json"
    answer = httpx.post(
        server.url + WEBHOOK, content=body, headers={**HOOK, "Content-Type": content_type}, timeout=10
    )
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]
    detail = httpx.get(f"{server.url}/v1/incidents/{kept}", headers=auth("viewer"))
    assert detail.status_code == 200 and len(detail.json()["alerts"]) == 1


def test_oversized_bodies_are_refused(make_settings, live_server):
    server = live_server(make_settings(max_body_bytes=4096))
    big = fixture_payload()
    big["commonAnnotations"]["description"] = "x" * 5000
    answer = post_alerts(server.url, big)
    assert answer.status_code == 413 and "4096" in answer.json()["detail"]

    def chunks():
        yield json.dumps(big).encode()

    chunked = httpx.post(
        server.url + WEBHOOK, content=chunks(), headers={**HOOK, "Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert post_alerts(server.url, fixture_payload()).status_code == 202
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'opsagent_webhook_requests_total{outcome="too_large"} 2.0' in metrics
    assert 'opsagent_webhook_requests_total{outcome="accepted"} 1.0' in metrics


def test_health_readiness_metrics_openapi(make_settings, live_server):
    server = live_server(make_settings())
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["checks"]["database"] == "ok" and ready["checks"]["queue"] == "ok"
    post_alerts(server.url, fixture_payload())
    wait_until(
        lambda: (
            'opsagent_investigations_total{outcome="done"} 1.0' in httpx.get(f"{server.url}/metrics").text
        ),
        what="investigation metric",
    )
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("opsagent_incidents_created_total 1.0", "opsagent_queue_depth", "opsagent_llm_tokens"):
        assert name in text
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/alerts/alertmanager" in schema["paths"] and "/v1/chat" in schema["paths"]
    webhook = schema["paths"]["/v1/alerts/alertmanager"]["post"]
    assert webhook["requestBody"]["content"]["application/json"]["examples"]


def _sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_chat_streams_and_remembers(make_settings, live_server):
    server = live_server(make_settings())
    incident_id = post_alerts(server.url, fixture_payload()).json()["incident_ids"][0]
    wait_done(server.url, incident_id)
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat",
        json={"message": "why is checkout failing?", "incident_id": incident_id},
        headers=auth("responder"),
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse(response.read().decode())
    kinds = [k for k, _ in events]
    assert kinds[0] == "evidence" and "text" in kinds and kinds[-1] == "done"
    assert kinds.index("findings") < kinds.index("done")
    conversation = events[-1][1]["conversation_id"]

    answer = httpx.post(
        f"{server.url}/v1/chat",
        json={"message": "and what do I do first?", "conversation_id": conversation, "stream": False},
        headers=auth("responder"),
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["conversation_id"] == conversation
    assert answer.json()["message"]
    stored = httpx.get(f"{server.url}/v1/conversations/{conversation}", headers=auth("responder")).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant", "user", "assistant"]
    assert stored["incident_id"] == incident_id

    assert (
        httpx.post(f"{server.url}/v1/chat", json={"message": "hi"}, headers=auth("viewer")).status_code == 403
    )
    unknown = httpx.post(
        f"{server.url}/v1/chat", json={"message": "hi", "conversation_id": "nope"}, headers=auth("responder")
    )
    assert unknown.status_code == 404
    assert (
        httpx.post(f"{server.url}/v1/chat", json={"message": ""}, headers=auth("responder")).status_code
        == 422
    )

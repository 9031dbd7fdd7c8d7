"""The notification queue against real local HTTP sinks: a slow sink never holds up the sender,
failed deliveries are retried and then reported, and the Slack body is what an incoming webhook takes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from opsagent.autonomy.notify import Delivery, Notification, Notifiers, WebhookNotifier
from opsagent.config import NotifySettings, WebhookNotifierSettings

from ..support.sinks import Sink, webhook_sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    with webhook_sink() as rec:
        yield rec


def note(**kw: Any) -> Notification:
    values: dict[str, Any] = {
        "kind": "action_failed",
        "severity": "page",
        "incident_id": "inc-q",
        "title": "opsagent: restart-deployment on orders failed",
        "text": "HTTP 500 from <the automation> & co",
    }
    values.update(kw)
    return Notification(**values)


def notifiers(sink: Sink, **kw: Any) -> Notifiers:
    hook = WebhookNotifierSettings.model_validate({"url": sink.url, **kw.pop("hook", {})})
    return Notifiers.from_settings(NotifySettings(webhooks=[hook], **kw))


def test_a_slow_sink_does_not_hold_up_the_sender(sink: Sink):
    sink.delay = 1.5
    n = notifiers(sink, base_url="https://ops.example.com/")
    started = time.monotonic()
    [queued] = n.send(note())
    assert time.monotonic() - started < 0.3
    assert queued.ok and queued.queued and sink.bodies == []
    assert n.flush(10)
    [body] = sink.bodies
    assert body["kind"] == "action_failed" and body["url"] == "https://ops.example.com/incidents/inc-q"
    n.close()


def test_failed_deliveries_are_retried(sink: Sink):
    sink.script = [500, 503]
    n = notifiers(sink, attempts=3, retry_backoff_seconds=0.05)
    n.send(note())
    assert n.flush(10)
    assert len(sink.bodies) == 3  # two failures, then delivered
    n.close()


def test_a_delivery_that_keeps_failing_is_reported(sink: Sink):
    sink.script = [500, 500]
    failures: list[tuple[Notification, Delivery]] = []
    n = notifiers(sink, attempts=2, retry_backoff_seconds=0.05)
    n.on_failure = lambda nt, d: failures.append((nt, d))
    n.send(note())
    assert n.flush(10)
    [(failed, delivery)] = failures
    assert failed.incident_id == "inc-q" and not delivery.ok and "HTTP 500" in (delivery.error or "")
    n.close()


def test_a_full_queue_refuses_rather_than_blocks(sink: Sink):
    sink.delay = 1.0
    n = notifiers(sink, queue_size=1)
    results = [n.send(note(incident_id=f"inc-{i}"))[0] for i in range(4)]
    assert any(not d.ok and d.error == "notification queue full" for d in results)
    n.close(drain_seconds=5)


def test_slack_body(sink: Sink):
    settings = WebhookNotifierSettings(url=sink.url, format="slack")
    WebhookNotifier(settings).send(note(url="https://ops.example.com/incidents/inc-q"))
    [body] = sink.bodies
    assert body["text"].startswith("*opsagent: restart-deployment on orders failed*")
    # Text from the alert is escaped; the link is Slack's <url|label>.
    assert "&lt;the automation&gt; &amp; co" in body["text"]
    assert "<https://ops.example.com/incidents/inc-q|Open incident inc-q>" in body["text"]
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"


def test_a_refused_notification_is_not_sent_again(sink: Sink):
    sink.script = [400, 400, 400]
    failures: list[Delivery] = []
    n = notifiers(sink, attempts=3, retry_backoff_seconds=0.05)
    n.on_failure = lambda _note, d: failures.append(d)
    n.send(note())
    assert n.flush(10)
    assert len(sink.bodies) == 1 and "HTTP 400" in (failures[0].error or "")
    n.close()

"""Notifiers: tell people what the autonomy runner needs from them or could not do.

The runner sends a ``Notification`` when an action failed, when its verification failed (with what
the rollback did), and when actions wait for approval. Failures are ``page`` severity, approvals
``info``: at L5 a person is paged only when something fails (DESIGN.md), and a webhook that should
page (PagerDuty) is configured with ``min_severity: page`` so approval requests go only to chat.

``WebhookNotifier`` POSTs JSON with a timeout. The generic body carries ``text`` (what Slack, Teams
and Mattermost incoming webhooks display) next to structured fields; ``format: pagerduty`` sends a
PagerDuty Events API v2 ``trigger``. A notifier that fails raises ``NotifierError``; ``Notifiers``
catches it, logs it and reports it back (the runner audits it): a dead chat webhook never stops an
action, a rollback or an investigation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel, Field, JsonValue

from opsagent.config import NotifySettings, WebhookNotifierSettings
from opsagent.errors import NotifierError

log = logging.getLogger(__name__)

NotificationKind = Literal["action_failed", "verification_failed", "approval_needed"]
Severity = Literal["info", "page"]
_RANK: dict[str, int] = {"info": 0, "page": 1}


class NotifiedRequest(BaseModel):
    """One action request as a notification shows it."""

    id: str
    action_id: str
    service: str
    namespace: str | None = None
    status: str
    reason: str
    missing_params: list[str] = Field(default_factory=list)


class Notification(BaseModel):
    kind: NotificationKind
    severity: Severity
    incident_id: str
    title: str
    text: str
    requests: list[NotifiedRequest] = Field(default_factory=list)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Where a person can look (the incident's report), when the service's address is configured.
    url: str | None = None


class Delivery(BaseModel):
    notifier: str
    ok: bool
    error: str | None = None


class Notifier(Protocol):
    @property
    def name(self) -> str: ...

    def wants(self, note: Notification) -> bool: ...

    def send(self, note: Notification) -> None:
        """Deliver ``note``; raises ``NotifierError`` when it could not."""
        ...


def _generic_body(note: Notification) -> dict[str, JsonValue]:
    body: dict[str, JsonValue] = note.model_dump(mode="json")
    body["source"] = "opsagent"
    body["text"] = f"{note.title}\n{note.text}" + (f"\n{note.url}" if note.url else "")
    return body


def _pagerduty_body(note: Notification, routing_key: str) -> dict[str, JsonValue]:
    # One open PagerDuty incident per opsagent incident and kind: repeats update it, not page again.
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f"opsagent-{note.incident_id}-{note.kind}",
        "payload": {
            "summary": note.title[:1024],
            "source": "opsagent",
            "severity": "critical" if note.severity == "page" else "info",
            "timestamp": note.at.isoformat(),
            "custom_details": {
                "text": note.text,
                "incident_id": note.incident_id,
                "requests": [r.model_dump(mode="json") for r in note.requests],
            },
        },
        **({"links": [{"href": note.url, "text": "opsagent report"}]} if note.url else {}),
    }


class WebhookNotifier:
    """A JSON POST to one endpoint, with an optional auth header and a timeout."""

    def __init__(self, settings: WebhookNotifierSettings, client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.Client(timeout=httpx.Timeout(settings.timeout_seconds))

    @property
    def name(self) -> str:
        # Never the URL itself: Slack and Teams put their secret in it.
        return self._settings.name or f"webhook:{httpx.URL(self._settings.url).host}"

    def wants(self, note: Notification) -> bool:
        return _RANK[note.severity] >= _RANK[self._settings.min_severity]

    def close(self) -> None:
        self._client.close()

    def send(self, note: Notification) -> None:
        s = self._settings
        headers = {"User-Agent": "opsagent", "Content-Type": "application/json"}
        if s.token is not None:
            scheme = f"{s.auth_scheme} " if s.auth_scheme else ""
            headers[s.auth_header] = scheme + s.token.get_secret_value()
        if s.format == "pagerduty":
            if s.routing_key is None:
                raise NotifierError(f"{self.name}: format pagerduty needs a routing_key")
            body = _pagerduty_body(note, s.routing_key.get_secret_value())
        else:
            body = _generic_body(note)
        try:
            response = self._client.post(s.url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise NotifierError(f"{self.name}: timed out after {s.timeout_seconds:g}s") from exc
        except httpx.HTTPError as exc:
            raise NotifierError(f"{self.name}: {type(exc).__name__}") from exc
        if not response.is_success:
            raise NotifierError(f"{self.name}: HTTP {response.status_code}")


class Notifiers:
    """Fans a notification out to every notifier that wants it; never raises."""

    def __init__(self, notifiers: Iterable[Notifier] = (), *, base_url: str | None = None) -> None:
        self._notifiers = list(notifiers)
        self._base_url = base_url.rstrip("/") if base_url else None

    @classmethod
    def from_settings(cls, settings: NotifySettings) -> Notifiers:
        return cls((WebhookNotifier(w) for w in settings.webhooks), base_url=settings.base_url)

    def __bool__(self) -> bool:
        return bool(self._notifiers)

    def send(self, note: Notification) -> list[Delivery]:
        if self._base_url and note.url is None:
            note = note.model_copy(
                update={"url": f"{self._base_url}/v1/incidents/{note.incident_id}/report?format=html"}
            )
        out: list[Delivery] = []
        for notifier in self._notifiers:
            try:
                if not notifier.wants(note):
                    continue
                notifier.send(note)
            except NotifierError as exc:
                log.warning("notification %s for incident %s failed: %s", note.kind, note.incident_id, exc)
                out.append(Delivery(notifier=notifier.name, ok=False, error=str(exc)))
                continue
            except Exception as exc:  # a notifier's bug must not take an action or a rollback down
                log.exception("notifier %s crashed", notifier.name)
                out.append(
                    Delivery(notifier=notifier.name, ok=False, error=f"internal error ({type(exc).__name__})")
                )
                continue
            out.append(Delivery(notifier=notifier.name, ok=True))
        return out

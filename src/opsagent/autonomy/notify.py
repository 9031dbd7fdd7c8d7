"""Notifiers: tell people what an investigation found, and what the autonomy runner needs or could not do.

Sent: "investigation finished" (top cause, confidence, its evidence in one line, a link to the
incident's page in the console) from the job runner; from the autonomy runner, an action that
failed (at every level), a failed verification (with what the rollback did), and actions waiting
for approval. Failures are ``page`` severity, the rest ``info``: at L5 a person is paged only when
something fails (DESIGN.md), and a webhook that should page (PagerDuty) is configured with
``min_severity: page`` so the rest goes only to chat.

``WebhookNotifier`` POSTs JSON with a timeout. ``format: slack`` sends what a Slack (or Mattermost)
incoming webhook expects: ``text`` with a ``<url|link>`` and one section block; ``generic`` sends
``text`` next to the structured fields; ``pagerduty`` sends an Events API v2 ``trigger``.

``Notifiers.send`` only queues: a background thread delivers, trying each sink ``attempts`` times
with a growing pause (a 4xx refusal, 408 and 429 aside, is final), so a slow or dead sink never
holds up an investigation, an action or a rollback. A full queue drops the newest notification and logs it. A failed delivery is logged and
handed to ``on_failure`` (the runner audits it).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel, Field, JsonValue

from opsagent.config import NotifySettings, WebhookNotifierSettings
from opsagent.domain import Investigation
from opsagent.errors import NotifierError

log = logging.getLogger(__name__)

NotificationKind = Literal[
    "action_failed", "verification_failed", "approval_needed", "investigation_finished"
]
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
    # Where a person can look (the incident's page in the console), when the service's address is
    # configured (OPSAGENT_NOTIFY__BASE_URL).
    url: str | None = None
    # "investigation finished": the top cause and its confidence, for sinks that want fields.
    top_cause: str | None = None
    confidence: float | None = None


class NotifierRefusedError(NotifierError):
    """The endpoint refused the notification itself (HTTP 4xx): sending it again would not help."""


class Delivery(BaseModel):
    notifier: str
    ok: bool
    error: str | None = None
    # True when the notification was handed to the sending queue, not yet delivered.
    queued: bool = False


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


def _slack_escape(text: str) -> str:
    # Slack reads <, > and & as markup (links, mentions): text from alerts must not become any.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_body(note: Notification) -> dict[str, JsonValue]:
    text = f"*{_slack_escape(note.title)}*\n{_slack_escape(note.text)}"
    if note.url:
        text += f"\n<{note.url}|Open incident {_slack_escape(note.incident_id)}>"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
        "unfurl_links": False,
    }


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
        elif s.format == "slack":
            body = _slack_body(note)
        else:
            body = _generic_body(note)
        try:
            response = self._client.post(s.url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise NotifierError(f"{self.name}: timed out after {s.timeout_seconds:g}s") from exc
        except httpx.HTTPError as exc:
            raise NotifierError(f"{self.name}: {type(exc).__name__}") from exc
        if not response.is_success:
            code = response.status_code
            # A 4xx other than timeout / too-many-requests will answer the same again: no retry.
            final = 400 <= code < 500 and code not in (408, 429)
            raise (NotifierRefusedError if final else NotifierError)(f"{self.name}: HTTP {code}")


FailureCallback = Callable[[Notification, Delivery], None]


class Notifiers:
    """Queues a notification for every notifier that wants it; a background thread delivers with retries.

    Never raises, never blocks on a sink. ``close()`` waits (up to ``drain_seconds``) for what is queued.
    """

    def __init__(
        self,
        notifiers: Iterable[Notifier] = (),
        *,
        base_url: str | None = None,
        queue_size: int = 1_000,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        on_failure: FailureCallback | None = None,
    ) -> None:
        self._notifiers = list(notifiers)
        self._base_url = base_url.rstrip("/") if base_url else None
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self.on_failure = on_failure
        self._queue: queue.Queue[tuple[Notification, Notifier] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @classmethod
    def from_settings(
        cls, settings: NotifySettings, *, on_failure: FailureCallback | None = None
    ) -> Notifiers:
        return cls(
            (WebhookNotifier(w) for w in settings.webhooks),
            base_url=settings.base_url,
            queue_size=settings.queue_size,
            attempts=settings.attempts,
            backoff_seconds=settings.retry_backoff_seconds,
            on_failure=on_failure,
        )

    def __bool__(self) -> bool:
        return bool(self._notifiers)

    def incident_url(self, incident_id: str) -> str | None:
        """The incident's page in the console (a browser signs in first, then lands there)."""
        return f"{self._base_url}/incidents/{incident_id}" if self._base_url else None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._deliver_loop, name="notifier", daemon=True)
                self._thread.start()

    def send(self, note: Notification) -> list[Delivery]:
        """Queue ``note`` for each notifier that wants it; returns one queued delivery per notifier."""
        if note.url is None and self._base_url:
            note = note.model_copy(update={"url": self.incident_url(note.incident_id)})
        out: list[Delivery] = []
        for notifier in self._notifiers:
            try:
                if not notifier.wants(note):
                    continue
                self._queue.put_nowait((note, notifier))
            except queue.Full:
                log.error("notification queue full: %s for incident %s dropped", note.kind, note.incident_id)
                out.append(Delivery(notifier=notifier.name, ok=False, error="notification queue full"))
                continue
            except Exception as exc:  # a notifier's bug must not take an action or a rollback down
                log.exception("notifier %s crashed", notifier.name)
                out.append(
                    Delivery(notifier=notifier.name, ok=False, error=f"internal error ({type(exc).__name__})")
                )
                continue
            out.append(Delivery(notifier=notifier.name, ok=True, queued=True))
        if any(d.queued for d in out):
            self._start()
        return out

    def deliver(self, note: Notification, notifier: Notifier) -> Delivery:
        """Send ``note`` to one notifier now, with the retries; never raises."""
        error = ""
        for attempt in range(1, self._attempts + 1):
            try:
                notifier.send(note)
                return Delivery(notifier=notifier.name, ok=True)
            except NotifierRefusedError as exc:
                error = str(exc)
                break
            except NotifierError as exc:
                error = str(exc)
            except Exception as exc:  # a notifier's bug is its failure, not the sender's
                log.exception("notifier %s crashed", notifier.name)
                error = f"internal error ({type(exc).__name__})"
            if attempt < self._attempts:
                # A growing pause; cut short when the notifiers are closing.
                self._closed.wait(self._backoff * 2 ** (attempt - 1))
        log.warning(
            "notification %s for incident %s to %s failed after %d attempt(s): %s",
            note.kind,
            note.incident_id,
            notifier.name,
            attempt,
            error,
        )
        return Delivery(notifier=notifier.name, ok=False, error=error)

    def _deliver_loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                note, notifier = item
                delivery = self.deliver(note, notifier)
                if not delivery.ok and self.on_failure is not None:
                    try:
                        self.on_failure(note, delivery)
                    except Exception:
                        log.exception("notification failure callback failed")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, drain_seconds: float = 5.0) -> None:
        """Deliver what is queued (pauses between retries are skipped), then stop the thread."""
        self.flush(drain_seconds)
        self._closed.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                return
            thread.join(timeout=drain_seconds)
        for notifier in self._notifiers:
            close = getattr(notifier, "close", None)
            if callable(close):
                close()


def investigation_note(inv: Investigation) -> Notification:
    """ "Investigation finished": the top cause, its confidence and its evidence in one line."""
    f = inv.findings
    title = inv.incident.title
    if f.root_causes:
        top = f.root_causes[0]
        what = f"{top.service} ({top.fault_type.value}, confidence {top.confidence:.2f})"
        evidence = "; ".join(" ".join(e.summary.split()) for e in top.evidence[:3])
        head = f"opsagent: {title}: likely {what}"
        text = f"Top cause: {what}" + (f". Evidence: {evidence}" if evidence else "")
    else:
        head = f"opsagent: {title}: no clear root cause"
        text = f.summary or "No clear root cause in the evidence."
    if inv.gaps:
        text += "\nMissing evidence: " + "; ".join(f"{g.source}: {g.reason}" for g in inv.gaps[:3])
    return Notification(
        kind="investigation_finished",
        severity="info",
        incident_id=inv.incident.id,
        title=head[:300],
        text=text[:1500],
        top_cause=f.root_causes[0].service if f.root_causes else None,
        confidence=f.root_causes[0].confidence if f.root_causes else None,
    )

"""The running service's edges: API tokens and roles, notifiers, the web console."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

ApiRole = Literal["viewer", "responder", "admin"]


class ApiToken(BaseModel):
    """A bearer token for the HTTP API, from configuration (``OPSAGENT_API_TOKENS``, a JSON list)."""

    name: str = Field(min_length=1)
    token: SecretStr
    role: ApiRole = "viewer"


class WebhookNotifierSettings(BaseModel):
    """One notification endpoint: a JSON POST per notification (Slack, Teams, Mattermost, PagerDuty, ...).

    ``slack`` sends a Slack/Mattermost incoming-webhook message (``text`` with a link, one block);
    ``generic`` sends ``text`` (what chat incoming webhooks display) with structured fields;
    ``pagerduty`` sends an Events API v2 trigger with ``routing_key``. ``min_severity: page`` limits
    an endpoint to failures (failed actions, verifications, rollbacks); ``info`` adds approval requests.
    """

    url: str
    name: str = ""
    format: Literal["generic", "slack", "pagerduty"] = "generic"
    token: SecretStr | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    routing_key: SecretStr | None = None
    min_severity: Literal["info", "page"] = "info"
    timeout_seconds: float = Field(default=5.0, gt=0)


class NotifySettings(BaseModel):
    """Notifiers (``OPSAGENT_NOTIFY__WEBHOOKS`` as a JSON list); none configured: the log only."""

    webhooks: list[WebhookNotifierSettings] = Field(default_factory=list)
    # The service's public address, so a notification links to the incident's page in the console.
    base_url: str | None = None
    # Notifications wait in a bounded queue and are sent by a background thread, so a slow or dead
    # sink never holds up an investigation or an action; each is tried ``attempts`` times with backoff.
    queue_size: int = Field(default=1_000, ge=1)
    attempts: int = Field(default=3, ge=1)
    retry_backoff_seconds: float = Field(default=1.0, ge=0)
    # Send "investigation finished" with the top cause (failed actions are always sent).
    investigations: bool = True


class ConsoleSettings(BaseModel):
    """The web console served at ``/`` by ``opsagent serve``."""

    # How long a sign-in lasts before the API token must be given again.
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Signs the session cookies. Unset: a random key kept in ``data_dir/console.key``, shared by the
    # processes that share the data folder.
    secret_key: SecretStr | None = None
    # Mark the session cookie Secure (HTTPS only): set it when the console is served over TLS.
    secure_cookies: bool = False
    # Where `opsagent eval --json` reports are looked for (``*.json``), browsable in the console.
    reports_dir: Path = Path("reports")
    # A dashboard per incident, e.g. Grafana: placeholders {service}, {namespace}, {alertname},
    # {start_ms}, {end_ms} (epoch milliseconds), {start}, {end} (RFC 3339), URL-encoded when filled.
    dashboard_url: str | None = None


class IncidentSettings(BaseModel):
    """How the webhook's alert groups become incidents (one incident per ``groupKey`` at a time).

    Alertmanager reuses a groupKey for as long as its route exists, so the same group firing again
    weeks later is usually a new problem, while firing again minutes after it resolved is the same
    one come back.
    """

    # A resolved incident whose alert group fires again within this many minutes of its resolution
    # (as opsagent received them) reopens as a new episode of that incident; later, the group opens
    # a new incident. 0: every firing after a resolution is a new incident.
    reopen_within_minutes: float = Field(default=24 * 60.0, ge=0)

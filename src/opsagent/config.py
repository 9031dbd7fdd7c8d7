"""Settings: one ``Settings`` object, built once by the CLI or ``create_app()``, never at import.

Sources, highest first: constructor arguments, ``OPSAGENT_*`` environment variables (nested with
``__``, e.g. ``OPSAGENT_LLM__BASE_URL``), the YAML file named by ``OPSAGENT_CONFIG_FILE`` (default
``./opsagent.yaml`` when it exists), then the defaults below.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from opsagent.domain import AutonomyLevel, Risk
from opsagent.errors import InputError, OpsAgentError


class LLMSettings(BaseModel):
    """An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp). Unset ``base_url``/``model``: no LLM."""

    base_url: str | None = None
    api_key: SecretStr = SecretStr("not-needed")
    model: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2
    temperature: float = 0.0
    # Budgets per investigation (and per chat turn): a runaway agent loop costs money and delays the page.
    max_steps: int = 8
    max_prompt_tokens: int = 24_000
    max_seconds: float = 120.0
    """A wall clock for the whole agent run: a model call still in flight at this point is cancelled
    (the client's own timeout and retries notwithstanding) and the offline engine answers."""

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


# The signal catalogue: one PromQL template per signal, named like the native format's columns so the
# engine classifies live and recorded series alike. Placeholders {service}, {namespace}, {pod}, {job}
# are filled from the alert's labels as regular expressions (".*" when the alert lacks the label), so
# templates match them with =~. Each default groups by the service label, so one query covers every
# service of the namespace (not just the alert's pod): the engine needs them all to tell a cause from
# its victims. Defaults assume kube-prometheus (cAdvisor, kube-state-metrics) and RED metrics named
# http_requests_total / http_request_duration_seconds with a `service` label.
_RED = 'http_requests_total{namespace=~"{namespace}"}'
_CADVISOR = '{namespace=~"{namespace}",container!="",container!="POD"}'
_AS_SERVICE = '"service", "$1", "container", "(.+)"'
DEFAULT_PROMETHEUS_SIGNALS: dict[str, str] = {
    "request_rate": f"sum by (service) (rate({_RED}[5m]))",
    # "or 0 * total": a service without a single 5xx yet reads 0, not absent, so the minutes before
    # the first error are a normal period to compare with (absent, there is nothing to compare).
    "error_ratio": (
        f'(sum by (service) (rate(http_requests_total{{namespace=~"{{namespace}}",code=~"5.."}}[5m]))'
        f" or 0 * sum by (service) (rate({_RED}[5m])))"
        f" / sum by (service) (rate({_RED}[5m]))"
    ),
    "latency_p50_seconds": (
        "histogram_quantile(0.5, sum by (service, le) "
        '(rate(http_request_duration_seconds_bucket{namespace=~"{namespace}"}[5m])))'
    ),
    "latency_p99_seconds": (
        "histogram_quantile(0.99, sum by (service, le) "
        '(rate(http_request_duration_seconds_bucket{namespace=~"{namespace}"}[5m])))'
    ),
    "cpu_usage_cores": (
        f"sum by (service) (label_replace(rate(container_cpu_usage_seconds_total{_CADVISOR}[5m]), {_AS_SERVICE}))"
    ),
    "memory_bytes": (
        f"sum by (service) (label_replace(container_memory_working_set_bytes{_CADVISOR}, {_AS_SERVICE}))"
    ),
    "restarts_total": (
        "sum by (service) (label_replace(kube_pod_container_status_restarts_total"
        f'{{namespace=~"{{namespace}}"}}, {_AS_SERVICE}))'
    ),
    # The share of a service's scrape targets that answer: 0 when its process is gone (down,
    # refusing connections), which its other series cannot show because they simply stop.
    "target_up": 'avg by (service) (up{namespace=~"{namespace}"})',
    "cpu_throttled_ratio": (
        "sum by (service) (label_replace(rate(container_cpu_cfs_throttled_periods_total"
        f"{_CADVISOR}[5m]), {_AS_SERVICE})) / sum by (service) (label_replace(rate("
        f"container_cpu_cfs_periods_total{_CADVISOR}[5m]), {_AS_SERVICE}))"
    ),
    # Calls per call edge, as a service mesh (Istio) reports them from the caller's side: the caller
    # as `service`, the callee as `peer`. A one-minute rate, so that calls which stop for a few
    # minutes read 0 rather than being averaged away.
    "call_rate_per_second": (
        'sum by (service, peer) (label_replace(label_replace(rate(istio_requests_total{reporter="source",'
        'source_workload_namespace=~"{namespace}"}[1m]), "service", "$1", "source_workload", "(.+)"),'
        ' "peer", "$1", "destination_workload", "(.+)"))'
    ),
}


# The catalogue for services instrumented with a plain Prometheus client library (Python's
# prometheus-client, Go's client_golang, ...) and scraped without Kubernetes: the scrape job names
# the service. It reads the common conventions: `http_requests_total` with a `code` label (the
# status), `http_request_duration_seconds` histograms, the client's own `process_*` metrics, `up`,
# and, for a call graph, `http_client_requests_total` counted by the caller with a `peer` label
# naming the callee. Rates over 1m suit scrape intervals up to 15 s. See docs/LIVE.md.
_JOB = '"service", "$1", "job", "(.+)"'
_REQS = "sum by (job) (rate(http_requests_total[1m]))"
PROMETHEUS_CLIENT_SIGNALS: dict[str, str] = {
    "request_rate": f"label_replace({_REQS}, {_JOB})",
    "error_ratio": (
        f'label_replace((sum by (job) (rate(http_requests_total{{code=~"5.."}}[1m])) or 0 * {_REQS})'
        f" / {_REQS}, {_JOB})"
    ),
    "latency_p50_seconds": (
        "label_replace(histogram_quantile(0.5, sum by (job, le) "
        f"(rate(http_request_duration_seconds_bucket[1m]))), {_JOB})"
    ),
    "latency_p99_seconds": (
        "label_replace(histogram_quantile(0.99, sum by (job, le) "
        f"(rate(http_request_duration_seconds_bucket[1m]))), {_JOB})"
    ),
    "cpu_usage_cores": f"label_replace(sum by (job) (rate(process_cpu_seconds_total[1m])), {_JOB})",
    "memory_bytes": f"label_replace(sum by (job) (process_resident_memory_bytes), {_JOB})",
    # A restart shows as a new process start time.
    "restarts_total": f"label_replace(sum by (job) (changes(process_start_time_seconds[5m])), {_JOB})",
    "target_up": f"label_replace(avg by (job) (up), {_JOB})",
    "call_rate_per_second": (
        f"label_replace(sum by (job, peer) (rate(http_client_requests_total[1m])), {_JOB})"
    ),
}
SIGNAL_CATALOGUES: dict[str, dict[str, str]] = {
    "kubernetes": DEFAULT_PROMETHEUS_SIGNALS,
    "prometheus-client": PROMETHEUS_CLIENT_SIGNALS,
}


class PrometheusSettings(BaseModel):
    url: str | None = None
    timeout_seconds: float = 10.0
    retries: int = 2
    # Bounds on what one investigation may ask of Prometheus.
    max_range_hours: float = 6.0
    max_points: int = 1_100
    headers: dict[str, str] = Field(default_factory=dict)
    # Which built-in signal catalogue ``signals`` defaults to: "kubernetes" (kube-prometheus,
    # cAdvisor, kube-state-metrics, Istio) or "prometheus-client" (plain client-library services,
    # the scrape job as the service). Setting ``signals`` yourself replaces it.
    catalogue: Literal["kubernetes", "prometheus-client"] = "kubernetes"
    signals: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROMETHEUS_SIGNALS))
    # The result label that names the service; series without it are attributed to the alert's service.
    service_label: str = "service"
    # The result label that names the callee of a call-edge series (its service is the caller):
    # such series are read for calls that went silent (``analysis.calls``).
    peer_label: str = "peer"
    # The step is the window over ``target_points``, never finer than ``min_step_seconds``.
    target_points: int = 240
    min_step_seconds: float = 15.0
    max_series_per_signal: int = 200

    @model_validator(mode="before")
    @classmethod
    def _catalogue_signals(cls, data: Any) -> Any:
        """Without explicit ``signals``, the named ``catalogue``'s."""
        if isinstance(data, dict) and "signals" not in data:
            name = data.get("catalogue", "kubernetes")
            if name in SIGNAL_CATALOGUES:
                return {**data, "signals": dict(SIGNAL_CATALOGUES[name])}
        return data


class LokiSettings(BaseModel):
    url: str | None = None
    token: SecretStr | None = None
    tenant: str | None = None
    timeout_seconds: float = 10.0
    limit: int = 5_000
    # LogQL stream selector; placeholders as for Prometheus (".+" when unknown: Loki refuses a
    # selector that matches the empty string).
    query: str = '{namespace=~"{namespace}"}'
    service_labels: list[str] = Field(default_factory=lambda: ["service", "app", "container", "job"])
    # The window is fetched in this many slices, each with limit/slices lines, so a chatty incident
    # period cannot crowd out the normal period the condensation compares it against.
    slices: int = 4


class FileLogSettings(BaseModel):
    """The file log source (folder ``OPSAGENT_LOGS_DIR``): JSON Lines, the format in docs/FORMATS.md."""

    # Files read under the folder, recursively.
    pattern: str = "*.jsonl"
    # At most this many lines per window; the latest are kept (that is where the incident is).
    limit: int = Field(default=50_000, ge=1)
    # Files are taken to be appended in time order: each is entered by a binary search for the
    # window's start, less this slack for lines written slightly out of order, and read until this
    # long past the window's end; the rest of the file is never read.
    order_slack_seconds: float = Field(default=60.0, ge=0)
    # Lines that are not JSON objects with a readable `timestamp` are skipped and counted in a gap;
    # beyond this share of the lines read, the source fails: the files are probably not this format.
    max_bad_share: float = Field(default=0.5, ge=0, le=1)


class TopologySettings(BaseModel):
    """The live service's call graph. File, inline calls and call-edge series are merged."""

    # A topology.yaml (`services: {NAME: {calls: [NAME, ...]}}`, the recorded incidents' format).
    file: Path | None = None
    # Inline, caller -> callees, e.g. `{"frontend": ["orders", "users"]}` (JSON in the environment).
    calls: dict[str, list[str]] = Field(default_factory=dict)
    # Add an edge for every call-edge series (a series with the peer label) Prometheus returns.
    from_peer_series: bool = True


class NormalPeriodSettings(BaseModel):
    """How much metrics history before the alert an investigation wants as its normal period.

    A normal period is fitted to the history that exists; when less than ``wanted_minutes`` exists
    the shortfall is a named gap, and below ``minimum_seconds`` the report says plainly that the
    metrics cannot be compared with anything (a fault right after start-up, a brand-new series).
    """

    wanted_minutes: float = Field(default=15.0, gt=0)
    minimum_seconds: float = Field(default=60.0, gt=0)
    # After an earlier episode (or another incident of the same services) resolved, its signals still
    # show it for a rate window (1 min in the shipped catalogues) plus a scrape and an evaluation:
    # the normal period starts this long after the resolution.
    settle_seconds: float = Field(default=90.0, ge=0)


class PolicyRule(BaseModel):
    """Allows ``actions`` to run without approval on matching targets (``*`` matches anything)."""

    actions: list[str] = Field(default_factory=lambda: ["*"])
    services: list[str] = Field(default_factory=lambda: ["*"])
    namespaces: list[str] = Field(default_factory=lambda: ["*"])
    max_risk: Risk = Risk.HIGH
    # Kinds of resolved target the rule covers. The default is a service's own objects; a node, a
    # database cluster or a feature flag belongs to no one service and must be named here.
    kinds: list[str] = Field(
        default_factory=lambda: ["deployment", "statefulset", "workload", "pod", "hpa", "cronjob", "service"]
    )


class MaintenanceWindow(BaseModel):
    """While a window is open nothing runs automatically on matching targets: people are at work there.

    Either one-off (``start``/``end``) or weekly (``days`` as ISO weekdays 1-7 with ``from_time``/``to_time``,
    UTC; ``to_time`` before ``from_time`` spans midnight).
    """

    services: list[str] = Field(default_factory=lambda: ["*"])
    namespaces: list[str] = Field(default_factory=lambda: ["*"])
    start: datetime | None = None
    end: datetime | None = None
    days: list[int] = Field(default_factory=list)
    from_time: time | None = None
    to_time: time | None = None
    reason: str = ""


class HttpExecutorSettings(BaseModel):
    """Automation endpoint (AWX, Rundeck, StackStorm webhook): ``POST {url}/{action_id}`` with a JSON body."""

    url: str | None = None
    # Per-action URL overrides, e.g. one AWX job template per action.
    routes: dict[str, str] = Field(default_factory=dict)
    token: SecretStr | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    timeout_seconds: float = 30.0
    verify_tls: bool = True


class KubernetesExecutorSettings(BaseModel):
    """The API server the kubernetes executor talks to (a service-account token; no kubeconfig magic)."""

    api_url: str | None = None
    token: SecretStr | None = None
    ca_file: Path | None = None
    verify_tls: bool = True
    timeout_seconds: float = 30.0
    # Bounds for scale-deployment whatever the runbook's schema allows.
    min_replicas: int = 1
    max_replicas: int = 50


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


class AutonomySettings(BaseModel):
    """Policy of the autonomy gate beyond the global level (``OPSAGENT_AUTONOMY_LEVEL``)."""

    service_levels: dict[str, AutonomyLevel] = Field(default_factory=dict)
    confidence_threshold: float = 0.7
    rules: list[PolicyRule] = Field(default_factory=list)
    kill_switch: bool = False
    dry_run: bool = False
    # Rate limits on automatic actions: at most N actions per service / per action id in the window.
    rate_window_seconds: float = 3600.0
    max_actions_per_service: int = 3
    max_actions_per_action: int = 5
    # Blast radius: no automatic action while more than this share of the target's replicas, or
    # more than this many services (counting the target), are being acted on.
    max_replica_share: float = 0.25
    max_concurrent_services: int = 2
    # Blast radius over time: distinct targets changed automatically within rate_window_seconds.
    max_targets_per_window: int = Field(default=3, ge=1)
    # Automatic changes per incident at L4/L5 (L3 allows exactly one).
    max_automatic_per_incident: int = Field(default=2, ge=1, le=5)
    # A proposal is considered only for a service among this many top root causes (automatic only
    # for the first), from one of this many best-matching runbooks of the incident.
    action_root_causes: int = Field(default=2, ge=1, le=5)
    action_runbooks: int = Field(default=3, ge=1, le=10)
    # Circuit breaker: a failed action or verification stops automatic actions for its incident; this
    # many failures within breaker_window_seconds stop them everywhere, until a person resets it.
    breaker_max_failures: int = Field(default=3, ge=1)
    breaker_window_seconds: float = Field(default=3600.0, gt=0)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    approval_ttl_seconds: float = 3600.0
    # How often the API and each worker mark pending approvals past their expiry as expired.
    approval_sweep_seconds: float = Field(default=30.0, gt=0)
    # Verification polls the action's PromQL condition until it holds or its wait runs out.
    verify_poll_seconds: float = 15.0
    verify_max_wait_seconds: float | None = None
    script_dir: Path = Path("scripts/actions")
    script_timeout_seconds: float = 120.0
    http: HttpExecutorSettings = Field(default_factory=HttpExecutorSettings)
    kubernetes: KubernetesExecutorSettings = Field(default_factory=KubernetesExecutorSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSAGENT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path(".opsagent")
    runbooks_dir: Path = Path("runbooks")
    prompts_dir: Path = Path("prompts")
    database_url: str | None = None
    redis_url: str | None = None
    chroma_url: str | None = None
    embedding: Literal["minilm", "hashing", "openai", "sentence-transformers"] = "minilm"
    # For "openai" (any OpenAI-compatible /embeddings endpoint) and "sentence-transformers".
    embedding_model: str | None = None
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    autonomy_level: AutonomyLevel = AutonomyLevel.L1
    autonomy: AutonomySettings = Field(default_factory=AutonomySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    logs_dir: Path | None = None
    file_logs: FileLogSettings = Field(default_factory=FileLogSettings)
    topology: TopologySettings = Field(default_factory=TopologySettings)
    normal_period: NormalPeriodSettings = Field(default_factory=NormalPeriodSettings)
    webhook_token: SecretStr | None = None
    source_timeout_seconds: float = 20.0
    reference_offset_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    """When set, an incident without a reference period gets one: its own window shifted back by this
    many hours (24: the same hours yesterday; 168: the same hours last week; at most a year). Logs
    and traces from there are the normal side of the event comparison instead of the minutes before
    the alert. An offset so short that the shifted window reaches the incident itself (its alert) is
    not used; the report names it as a gap."""
    # The service (``opsagent serve`` / ``opsagent worker``).
    api_tokens: list[ApiToken] = Field(default_factory=list)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=20, ge=0)
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # Investigations run at once by each worker process (thread mode: by the API process) without
    # OPSAGENT_REDIS_URL; more queue up in the database.
    workers: int = Field(default=2, ge=1)
    # Where investigations run without OPSAGENT_REDIS_URL. "process": in worker processes that
    # `opsagent serve` spawns at a lower OS priority, restarts when they die and stops with itself,
    # so an investigation never holds the API's GIL (webhook latency under load). "thread": in
    # threads of the API process (one process and one copy of the models fewer).
    worker_mode: Literal["process", "thread"] = "process"
    # Worker processes in "process" mode; each builds the services (runbook index, embedding model,
    # catalogue) once and runs `workers` investigations at once.
    worker_processes: int = Field(default=1, ge=1)
    # Beyond this many unfinished investigations, requests for more are refused (503) until it drains.
    queue_max_pending: int = Field(default=1_000, ge=1)
    # A running investigation whose worker stops renewing this lease is handed to another worker.
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1)
    redis_queue: str = "opsagent-investigations"

    @field_validator("autonomy_level", mode="before")
    @classmethod
    def _parse_level(cls, value: object) -> object:
        if isinstance(value, str):
            return AutonomyLevel.parse(value)
        return value

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{(self.data_dir / 'opsagent.db').resolve()}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.sqlite_url

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("OPSAGENT_CONFIG_FILE", "opsagent.yaml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, *, error: type[OpsAgentError] = InputError) -> float:
    """Seconds in ``"250ms"``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` or a plain number of seconds;
    ``error`` (a runbook's bad ``wait`` is a ``ConfigError``, a bad CLI option an ``InputError``)."""
    cleaned = "".join(text.lower().split())
    try:
        return float(cleaned)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise error(f"not a duration: {text!r} (expected e.g. 30s, 5m, 2h, 1h30m)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)

"""What the autonomy gate allows: policy rules, maintenance windows, limits, the breaker, approvals,
verification, and the executors' endpoints."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from opsagent.domain import AutonomyLevel, Risk


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

"""Where evidence comes from: Prometheus, Loki, log files, the call graph, and how much normal
history an investigation wants."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from opsagent.config.signals import DEFAULT_PROMETHEUS_SIGNALS, SIGNAL_CATALOGUES


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

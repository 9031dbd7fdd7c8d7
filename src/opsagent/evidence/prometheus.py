"""Live metrics from Prometheus: the signal catalogue's PromQL templates as range queries.

Each template is filled from the alert's labels and run as one ``query_range``; each result series
becomes a ``MetricSeries`` named after the catalogue entry, attributed to the service its
``service`` label names, and classified exactly like a recorded column of the same name, so the
engine ranks live and recorded evidence alike.

Failures never crash an investigation: a query Prometheus rejects (bad PromQL, timeout, too many
samples) becomes an ``EvidenceGap`` naming the signal and quoting Prometheus's own error; when
every query fails, or Prometheus cannot be reached, the whole source fails with ``PrometheusError``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from opsagent.config import PrometheusSettings
from opsagent.domain import EvidenceGap, Incident, MetricSeries
from opsagent.domain.signals import classify_signal, unit_of
from opsagent.errors import PrometheusError
from opsagent.evidence.base import Collected

log = logging.getLogger(__name__)

PLACEHOLDERS = ("service", "namespace", "pod", "job")
# Statuses worth retrying: overload and gateway trouble pass; a 400/422 (bad query) never will.
_TRANSIENT_STATUSES = (429, 502, 503, 504)
# RE2 metacharacters: a label value goes into a =~ matcher and must match only itself.
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_API_ERROR = re.compile(r'"errorType":\s*"([^"]*)",\s*"error":\s*"((?:[^"\\]|\\.)*)"')
_STATUS = re.compile(r"HTTP Status Code (\d+)")
# The window is asked again over the history that exists when the first sample comes this many
# steps after the window's start: a few missing steps are a scrape hiccup, not a young system.
_REFIT_STEPS = 4


def regex_literal(value: str) -> str:
    """``value`` as an RE2 pattern matching only itself, escaped for a double-quoted PromQL string."""
    return _RE2_SPECIAL.sub(r"\\\\\1", value)


def fill_template(template: str, values: dict[str, str], unknown: str = ".*") -> str:
    """Replace ``{service}``, ``{namespace}``, ``{pod}``, ``{job}``; other braces (PromQL's) stay.

    Known values are escaped as regex literals; unknown ones become ``unknown`` (match anything).
    """
    out = template
    for name in PLACEHOLDERS:
        value = values.get(name)
        out = out.replace("{" + name + "}", regex_literal(value) if value else unknown)
    return out


def placeholder_values(incident: Incident) -> dict[str, str]:
    """Placeholder values from the incident's alerts: the first alert that carries each label."""
    values: dict[str, str] = {}
    if incident.namespace:
        values["namespace"] = incident.namespace
    if incident.services:
        values["service"] = incident.services[0]
    for alert in incident.alerts:
        for name in PLACEHOLDERS:
            if name not in values and alert.labels.get(name):
                values[name] = alert.labels[name]
    return values


@dataclass(frozen=True)
class QueryRange:
    """What one investigation asks of Prometheus: a bounded window and a step."""

    start: float
    end: float
    step: float

    @property
    def points(self) -> int:
        return int((self.end - self.start) // self.step) + 1


def plan_range(start: float, end: float, settings: PrometheusSettings) -> QueryRange:
    """Clamp the window to ``max_range_hours`` (keeping its end, where the incident is) and size the step.

    The step is the window over ``target_points``, at least ``min_step_seconds`` and coarse enough
    to stay within ``max_points``, rounded up to whole seconds; the start is aligned to the step so
    that repeated queries of the same incident hit the same evaluation timestamps.
    """
    if end <= start:
        raise PrometheusError(f"empty time window ({start:.0f}..{end:.0f})")
    start = max(start, end - settings.max_range_hours * 3600.0)
    span = end - start
    step = max(
        settings.min_step_seconds,
        span / max(settings.target_points, 1),
        span / max(settings.max_points - 1, 1),
    )
    step = float(math.ceil(step))
    aligned = math.ceil(start / step) * step
    return QueryRange(start=aligned, end=end, step=step)


def _upstream_message(exc: Exception) -> str:
    """Prometheus's own words for a failure: its ``errorType: error`` when it sent one."""
    text = str(exc)
    found = _API_ERROR.search(text.replace("\\\\", "\\"))
    status = _STATUS.search(text)
    prefix = f"HTTP {status.group(1)}: " if status else ""
    if found:
        try:
            message = json.loads(f'"{found.group(2)}"')
        except json.JSONDecodeError:
            message = found.group(2)
        return f"{prefix}{found.group(1)}: {message}"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return text[:300]


class _UnreachableError(PrometheusError):
    """Prometheus did not answer at all (connection refused, timeout after retries)."""


class PrometheusSource:
    """Evidence source: the catalogue's signals for the incident's window, from a live Prometheus."""

    name = "metrics"

    def __init__(
        self,
        settings: PrometheusSettings,
        *,
        client: PrometheusConnect | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.url and client is None:
            raise PrometheusError("no Prometheus URL configured (OPSAGENT_PROMETHEUS__URL)")
        self._settings = settings
        self._clock = clock
        retry = Retry(
            total=max(settings.retries, 0),
            connect=max(settings.retries, 0),
            read=max(settings.retries, 0),
            status=max(settings.retries, 0),
            backoff_factor=0.3,
            status_forcelist=_TRANSIENT_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._client = client or PrometheusConnect(
            url=str(settings.url).rstrip("/"),
            headers=dict(settings.headers) or None,
            retry=retry,
            timeout=settings.timeout_seconds,  # requests takes a float despite the int hint
        )

    def query_range(self, promql: str, window: QueryRange) -> list[dict[str, Any]]:
        """One range query; ``PrometheusError`` with Prometheus's message on any failure."""
        try:
            result: list[dict[str, Any]] = self._client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(window.start, UTC),
                end_time=datetime.fromtimestamp(window.end, UTC),
                step=f"{window.step:g}",
                # Prometheus's own evaluation timeout, so an expensive query is cut off server-side.
                params={"timeout": f"{self._settings.timeout_seconds:g}s"},
            )
        except (PrometheusApiClientException, requests.RequestException, ValueError, KeyError) as exc:
            unreachable = isinstance(exc, requests.ConnectionError | requests.Timeout)
            kind = _UnreachableError if unreachable else PrometheusError
            raise kind(_upstream_message(exc)) from exc
        return result

    def series_for(
        self, signal: str, result: list[dict[str, Any]], fallback_service: str | None
    ) -> list[MetricSeries]:
        """Result series → ``MetricSeries``; series of the same service are summed (they are parts).

        A result series that also carries the peer label (``PrometheusSettings.peer_label``) is a
        call edge from its service to that peer, kept apart per peer.
        """
        per_key: dict[tuple[str, str | None], dict[float, float]] = {}
        for item in result:
            labels: dict[str, str] = item.get("metric") or {}
            service = labels.get(self._settings.service_label) or fallback_service
            if not service:
                continue
            points = per_key.setdefault((service, labels.get(self._settings.peer_label) or None), {})
            for stamp, raw in item.get("values") or []:
                value = float(raw)
                if math.isfinite(value):
                    points[float(stamp)] = points.get(float(stamp), 0.0) + value
        out: list[MetricSeries] = []
        for service, peer in sorted(per_key, key=lambda k: (k[0], k[1] or ""))[
            : self._settings.max_series_per_signal
        ]:
            points = per_key[(service, peer)]
            if not points:
                continue
            stamps = sorted(points)
            out.append(
                MetricSeries(
                    service=service,
                    peer=peer,
                    signal=signal,
                    kind=classify_signal(signal),
                    unit=unit_of(signal),
                    timestamps=stamps,
                    values=[points[t] for t in stamps],
                )
            )
        return out

    def collect(self, incident: Incident) -> Collected:
        return self._run(incident, self._settings.signals)

    def run_queries(self, incident: Incident, queries: dict[str, str]) -> Collected:
        """Extra queries (those the matched runbooks declare), with the same bounds and gaps."""
        return self._run(incident, queries)

    def _run(self, incident: Incident, signals: dict[str, str]) -> Collected:
        start, end = incident.window.start_s, incident.window.end_s
        # A live window reaches past now (the lookahead): there is nothing there yet, and sizing
        # the step for it would only make the samples that exist coarser.
        end = max(min(end, self._clock()), start + self._settings.min_step_seconds)
        window = plan_range(start, end, self._settings)
        values = placeholder_values(incident)
        collected = self._query_all(signals, values, window)
        # History younger than the window (a system or series started minutes ago): ask again over
        # the history that exists, at the finer step its shorter span allows, so the few minutes
        # there are carry enough samples for a normal period.
        # Nothing at all may mean a history shorter than one coarse step: then the most recent span
        # that the finest step covers is asked.
        first = history_start(collected.metrics)
        if first is None:
            fitted = end - self._settings.target_points * self._settings.min_step_seconds
        elif first - window.start > _REFIT_STEPS * window.step:
            fitted = first - window.step
        else:
            return collected
        refit = plan_range(max(fitted, start), end, self._settings)
        if refit.step < window.step:
            collected = self._query_all(signals, values, refit)
        return collected

    def _query_all(self, signals: dict[str, str], values: dict[str, str], window: QueryRange) -> Collected:
        collected = Collected()
        failures: list[PrometheusError] = []
        for signal, template in signals.items():
            promql = fill_template(template, values)
            try:
                result = self.query_range(promql, window)
            except _UnreachableError as exc:
                # Prometheus itself is gone: asking the remaining signals only multiplies the wait.
                raise PrometheusError(f"Prometheus at {self._settings.url}: {exc}") from exc
            except PrometheusError as exc:
                failures.append(exc)
                collected.gaps.append(EvidenceGap(source="metrics", reason=f"signal {signal}: {exc}"))
                continue
            series = self.series_for(signal, result, values.get("service"))
            if len(result) > self._settings.max_series_per_signal:
                collected.gaps.append(
                    EvidenceGap(
                        source="metrics",
                        reason=f"signal {signal}: {len(result)} series, kept the first "
                        f"{self._settings.max_series_per_signal}",
                    )
                )
            collected.metrics.extend(series)
        if failures and len(failures) == len(signals):
            raise PrometheusError(f"every query failed; first: {failures[0]}")
        return collected


def history_start(metrics: list[MetricSeries]) -> float | None:
    """The earliest sample of any series: where the metrics history that exists begins."""
    firsts = [m.timestamps[0] for m in metrics if m.timestamps]
    return min(firsts) if firsts else None

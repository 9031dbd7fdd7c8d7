"""Verification after an automatic action (L4, L5): does the action's PromQL condition hold?

A condition holds when the instant query returns at least one sample, as with an alerting rule
(``... < 0.01`` returns nothing while the ratio is too high). The verifier polls until the condition
holds or the action's ``wait`` runs out. When Prometheus cannot answer, the result is "unknown", not
"failed": the runner then escalates without rolling back, since nothing says the action did harm.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import BaseModel, JsonValue
from urllib3.util.retry import Retry

from opsagent.config import PrometheusSettings, parse_duration
from opsagent.domain import ProposedAction, VerifySpec
from opsagent.errors import ConfigError

VerifyStatus = Literal["passed", "failed", "unknown"]
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class VerifyResult(BaseModel):
    status: VerifyStatus
    query: str
    reason: str
    attempts: int = 0
    seconds: float = 0.0


class Verifier(Protocol):
    def verify(self, spec: VerifySpec, action: ProposedAction) -> VerifyResult: ...


def _escape(value: str) -> str:
    # Inside a PromQL double-quoted string: a quote or backslash in a value must not end the string.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_condition(promql: str, action: ProposedAction) -> str:
    """Fill ``{service}``, ``{namespace}`` and ``{<param>}`` placeholders; label matchers stay untouched."""
    resolved = action.resolved
    values: dict[str, str] = {
        "service": (resolved.service if resolved and resolved.service else action.target.service),
        "namespace": (resolved.namespace if resolved and resolved.namespace else None)
        or action.target.namespace
        or "default",
    }
    params: Mapping[str, JsonValue] = action.params
    for name, value in params.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            values[name] = str(value)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return _escape(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(fill, promql)


class PrometheusVerifier:
    """Polls an instant query through prometheus-api-client: the same client stack as the evidence
    source (``evidence.prometheus``), so one Prometheus is reached one way, with one set of headers,
    timeouts and TLS settings."""

    def __init__(
        self,
        settings: PrometheusSettings,
        *,
        poll_seconds: float = 15.0,
        max_wait_seconds: float | None = None,
        client: PrometheusConnect | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.url and client is None:
            raise ConfigError("verification needs a Prometheus URL (OPSAGENT_PROMETHEUS__URL)")
        self._timeout = settings.timeout_seconds
        self._client = client or PrometheusConnect(
            url=str(settings.url).rstrip("/"),
            headers=dict(settings.headers) or None,
            # No retries: the verifier polls again by itself, and a poll must not outlast its wait.
            retry=Retry(total=0, raise_on_status=False),
            timeout=settings.timeout_seconds,
        )
        self._poll = poll_seconds
        self._max_wait = max_wait_seconds
        self._sleep = sleep

    def close(self) -> None:
        self._client._session.close()

    def _holds(self, query: str) -> bool | None:
        """True/False from Prometheus; None when it could not answer."""
        try:
            result: Any = self._client.custom_query(query, params={"timeout": f"{self._timeout:g}s"})
        except (PrometheusApiClientException, requests.RequestException, ValueError, KeyError):
            return None
        if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
            # A bare comparison with `bool` gives a scalar [time, "value"]: it holds when non-zero.
            try:
                return float(result[1]) != 0.0
            except (TypeError, ValueError):
                return None
        if isinstance(result, list):
            return len(result) > 0
        return None

    def verify(self, spec: VerifySpec, action: ProposedAction) -> VerifyResult:
        query = render_condition(spec.promql, action)
        wait = parse_duration(spec.wait, error=ConfigError)
        if self._max_wait is not None:
            wait = min(wait, self._max_wait)
        started = time.monotonic()
        deadline = started + wait
        attempts = 0
        last: bool | None = None
        while True:
            attempts += 1
            last = self._holds(query)
            elapsed = time.monotonic() - started
            if last:
                return VerifyResult(
                    status="passed", query=query, reason="condition holds", attempts=attempts, seconds=elapsed
                )
            if time.monotonic() >= deadline:
                break
            self._sleep(min(self._poll, max(0.0, deadline - time.monotonic())))
        elapsed = time.monotonic() - started
        if last is None:
            return VerifyResult(
                status="unknown",
                query=query,
                reason="Prometheus could not evaluate the condition",
                attempts=attempts,
                seconds=elapsed,
            )
        return VerifyResult(
            status="failed",
            query=query,
            reason=f"condition did not hold within {wait:g}s",
            attempts=attempts,
            seconds=elapsed,
        )

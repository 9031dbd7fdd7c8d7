"""Prometheus metrics of one app instance (own registry, so several apps in one process don't clash)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from opsagent.domain import Investigation
from opsagent.jobs import JobReport


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhook_requests = Counter(
            "opsagent_webhook_requests",
            "Alertmanager webhook requests by outcome",
            ["outcome"],
            registry=r,
        )
        self.alerts = Counter("opsagent_alerts", "Alerts received, by result", ["result"], registry=r)
        self.incidents = Counter("opsagent_incidents_created", "Incidents created", registry=r)
        self.investigations = Counter(
            "opsagent_investigations", "Investigations finished, by outcome", ["outcome"], registry=r
        )
        self.investigation_seconds = Histogram(
            "opsagent_investigation_duration_seconds",
            "Wall time of investigations run by this process or its worker processes",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.queue_depth = Gauge("opsagent_queue_depth", "Investigations waiting for a worker", registry=r)
        self.llm_tokens = Counter("opsagent_llm_tokens", "LLM tokens used, by kind", ["kind"], registry=r)

    def track_queue(self, depth: Callable[[], int]) -> None:
        def read() -> float:
            try:
                return float(depth())
            except Exception:  # a scrape must not fail because the database blinked
                return float("nan")

        self.queue_depth.set_function(read)

    def job_finished(self, report: JobReport) -> None:
        """A job finished here or in a worker process (``opsagent.jobs``)."""
        self.investigations.labels(outcome=report.outcome).inc()
        if report.outcome in ("done", "failed"):
            self.investigation_seconds.observe(report.seconds)
        if report.prompt_tokens or report.completion_tokens:
            self.llm_tokens.labels(kind="prompt").inc(report.prompt_tokens)
            self.llm_tokens.labels(kind="completion").inc(report.completion_tokens)

    def chat_tokens(self, inv: Investigation | None) -> None:
        if inv is not None:
            self.llm_tokens.labels(kind="prompt").inc(inv.trace.prompt_tokens)
            self.llm_tokens.labels(kind="completion").inc(inv.trace.completion_tokens)

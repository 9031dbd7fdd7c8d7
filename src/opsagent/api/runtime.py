"""What the app holds for its lifetime: store, services, queue, metrics. Built and closed by the lifespan."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from opsagent.api.metrics import Metrics
from opsagent.autonomy import effective_level
from opsagent.config import Settings
from opsagent.domain import AutonomyLevel, Incident
from opsagent.evidence.base import EvidenceSource
from opsagent.factory import build_services
from opsagent.jobs import JobQueue, Runner, build_queue
from opsagent.pipeline import Services
from opsagent.store import Store, ingest
from opsagent.store.batch import GroupCommitter

log = logging.getLogger(__name__)


def incident_level(settings: Settings, incident: Incident) -> AutonomyLevel:
    """The lowest effective level (``autonomy.policy.effective_level``) among the incident's services."""
    levels = [effective_level(settings.autonomy_level, s, settings.autonomy) for s in incident.services]
    return min(levels or [settings.autonomy_level], key=lambda level: level.rank)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    services: Services
    queue: JobQueue
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings, *, sources: list[EvidenceSource] | None = None) -> Runtime:
        store = Store(settings)
        try:
            store.migrate()
            services = build_services(settings, sources)
            metrics = Metrics()
            runner = Runner(store, services, on_finished=metrics.job_finished)
            # In process mode the workers build their own services from the same sources.
            queue = build_queue(store, runner, sources=sources)
            queue.start()
        except BaseException:
            store.close()
            raise
        metrics.track_queue(queue.depth)
        return cls(settings=settings, store=store, services=services, queue=queue, metrics=metrics)

    def __post_init__(self) -> None:
        horizon = timedelta(minutes=self.settings.incidents.reopen_within_minutes)

        def write(session: Session, items: list[tuple[Incident, bool]]) -> list[ingest.IngestResult]:
            return ingest.ingest_batch(session, items, reopen_within=horizon)

        self.writer: GroupCommitter[tuple[Incident, bool], ingest.IngestResult] = GroupCommitter(
            self.store, write
        )

    def close(self) -> None:
        self.writer.close()
        self.queue.close()
        self.store.close()

    async def ingest(self, incident: Incident) -> ingest.IngestResult:
        """Store one delivery's alerts durably (group commit), then wake a worker for a new investigation."""
        auto = incident_level(self.settings, incident) is not AutonomyLevel.L0
        result = await asyncio.wrap_future(self.writer.submit((incident, auto)))
        if result.investigation_id:
            self.queue.submit([result.investigation_id])
        m = self.metrics
        if result.created:
            m.incidents.inc()
        if result.new_alerts:
            m.alerts.labels(result="new").inc(result.new_alerts)
        if result.duplicates:
            m.alerts.labels(result="duplicate").inc(result.duplicates)
        if result.resolved:
            m.alerts.labels(result="resolved").inc(result.resolved)
        m.webhook_requests.labels(outcome="accepted").inc()
        return result

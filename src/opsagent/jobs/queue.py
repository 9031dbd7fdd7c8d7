"""What the API needs of an investigation queue, and the choice of one from the settings."""

from __future__ import annotations

from typing import Protocol

from opsagent.evidence.base import EvidenceSource
from opsagent.jobs.job import Runner
from opsagent.jobs.process_queue import ProcessQueue
from opsagent.jobs.redis_queue import RedisQueue
from opsagent.jobs.thread_queue import LocalQueue
from opsagent.store import Store


class JobQueue(Protocol):
    """What the API needs of a queue."""

    def start(self) -> None: ...
    def submit(self, inv_ids: list[str]) -> None: ...
    def depth(self) -> int: ...
    def healthy(self) -> bool: ...
    def close(self) -> None: ...


def build_queue(store: Store, runner: Runner, *, sources: list[EvidenceSource] | None = None) -> JobQueue:
    """Redis workers with ``redis_url``; else worker processes, or threads of this process
    (``worker_mode``). ``runner`` runs the jobs in thread mode; in process mode each worker builds
    its own from ``sources`` (``None``: the live sources) and ``runner.on_finished`` gets their reports."""
    settings = runner.settings
    if settings.redis_url:
        return RedisQueue(store, settings)
    if settings.worker_mode == "thread":
        return LocalQueue(store, runner)
    return ProcessQueue(store, settings, sources=sources, on_finished=runner.on_finished)

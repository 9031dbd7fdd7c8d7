"""One investigation job: claim it, run ``pipeline.investigate`` under a renewed lease, store the
result, hand its proposed actions to the autonomy runner, report the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsagent.domain import Investigation
from opsagent.errors import OpsAgentError, StoreError
from opsagent.pipeline import Services, investigate
from opsagent.store import Store, incidents, investigations

if TYPE_CHECKING:
    from opsagent.autonomy.notify import Notifiers
    from opsagent.autonomy.runner import ActionRunner

log = logging.getLogger(__name__)

# Investigations yield the CPU to the webhook: an alert storm queues hundreds of them, and accepting
# the alerts matters more than starting their analysis a moment earlier.
WORKER_NICENESS = 10


@dataclass(frozen=True)
class JobReport:
    """A finished job as the API's metrics see it: small and picklable, it crosses from a worker process."""

    outcome: str  # "done", "failed", "retry", "skipped"
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0


JobCallback = Callable[[JobReport], None]


def worker_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Runner:
    """Runs one investigation job: claim it, run ``pipeline.investigate``, store the result."""

    def __init__(
        self,
        store: Store,
        services: Services,
        *,
        on_finished: JobCallback | None = None,
    ) -> None:
        self.store = store
        self.services = services
        self.settings = services.settings
        self.on_finished = on_finished
        self._actions: ActionRunner | None = None
        self._notifiers: Notifiers | None = None

    def run(self, inv_id: str, *, worker: str, claimed: bool = False) -> str:
        """Run ``inv_id`` unless someone else has it; returns the outcome."""
        lease = self.settings.job_lease_seconds
        if not claimed:
            with self.store.session() as s:
                if not investigations.claim(s, inv_id, worker=worker, lease_seconds=lease):
                    return "skipped"
        started = time.perf_counter()
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(inv_id, worker, stop), name=f"lease-{inv_id[:8]}", daemon=True
        )
        beat.start()
        try:
            with self.store.read() as s:
                incident = incidents.load_incident(
                    s, investigations.get_investigation_row(s, inv_id).incident_id
                )
            result = investigate(incident, self.services)
        except Exception as exc:
            stop.set()
            if isinstance(exc, OpsAgentError):
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("investigation %s failed: %s", inv_id, reason)
            else:
                reason = f"internal error ({type(exc).__name__})"
                log.exception("investigation %s crashed", inv_id)
            with self.store.session() as s:
                status = investigations.fail_investigation(
                    s, inv_id, reason, worker=worker, max_attempts=self.settings.job_max_attempts
                )
            outcome = "failed" if status == "failed" else "retry"
            self._notify(JobReport(outcome, time.perf_counter() - started))
            return outcome
        finally:
            stop.set()
        with self.store.session() as s:
            stored = investigations.finish_investigation(s, inv_id, result, worker=worker)
        outcome = "done" if stored else "skipped"
        if stored:
            self._announce(result)
            self._act(result)
        tokens = (result.trace.prompt_tokens, result.trace.completion_tokens) if stored else (0, 0)
        self._notify(JobReport(outcome, time.perf_counter() - started, *tokens))
        return outcome

    def _act(self, result: Investigation) -> None:
        """Hand the investigation's proposed actions to the autonomy runner (run, queue for approval, audit)."""
        if not result.findings.actions:
            return
        from opsagent.factory import build_action_runner

        try:
            if self._actions is None:
                self._actions = build_action_runner(self.settings, self.store, self.services.catalog)
            self._actions.process(result)
        except OpsAgentError as exc:
            # The findings are stored; a failing action step must not fail the investigation job.
            log.warning("actions for incident %s: %s", result.incident.id, exc)

    def close(self) -> None:
        """Send what notifications are still queued (a little while at most), then stop their thread."""
        if self._notifiers is not None:
            self._notifiers.close(drain_seconds=2.0)

    def _announce(self, result: Investigation) -> None:
        """Queue "investigation finished" for the notification sinks (issue 21); never blocks on them."""
        notify = self.settings.notify
        if not notify.webhooks or not notify.investigations:
            return
        from opsagent.autonomy.notify import Notifiers, investigation_note

        if self._notifiers is None:
            self._notifiers = Notifiers.from_settings(notify)
        self._notifiers.send(investigation_note(result))

    def _heartbeat(self, inv_id: str, worker: str, stop: threading.Event) -> None:
        lease = self.settings.job_lease_seconds
        while not stop.wait(lease / 3):
            try:
                with self.store.session() as s:
                    if not investigations.renew_lease(s, inv_id, worker=worker, lease_seconds=lease):
                        return
            except StoreError:
                log.warning("could not renew the lease of investigation %s", inv_id)

    def _notify(self, report: JobReport) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(report)
            except Exception:
                log.exception("job callback failed")

"""Evidence bundles of log lines alone, on a clock of seconds from 0, for the event-pattern tests."""

from __future__ import annotations

from datetime import UTC, datetime

from opsagent.domain import EvidenceBundle, Incident, LogRecord, TimeWindow


def lines_every(service: str, message: str, start: float, end: float, every: float) -> list[LogRecord]:
    """One line of ``message`` every ``every`` seconds in [start, end)."""
    n = int((end - start) / every)
    return [LogRecord(timestamp=start + i * every, service=service, message=message) for i in range(n)]


def log_bundle(incident_id: str, logs: list[LogRecord], end: float, alert: float) -> EvidenceBundle:
    """The lines, time-ordered, in a window [0, end] with its alert at ``alert``."""
    incident = Incident(
        id=incident_id,
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(end, UTC)),
        alert_time=datetime.fromtimestamp(alert, UTC),
    )
    return EvidenceBundle(incident=incident, logs=sorted(logs, key=lambda r: r.timestamp))

"""Replay: recorded evidence served through the same ``EvidenceSource`` protocol as live sources."""

from __future__ import annotations

from opsagent.domain import Incident, RecordedIncident
from opsagent.evidence.base import Collected, EvidenceSource


class _Replay:
    def __init__(self, recording: RecordedIncident) -> None:
        self._rec = recording

    def _bounds(self, incident: Incident) -> tuple[float, float]:
        return incident.window.start_s, incident.window.end_s


class ReplayMetrics(_Replay):
    name = "metrics"

    def collect(self, incident: Incident) -> Collected:
        lo, hi = self._bounds(incident)
        out = []
        for series in self._rec.metrics:
            keep = [i for i, t in enumerate(series.timestamps) if lo <= t <= hi]
            if len(keep) == len(series.timestamps):
                out.append(series)
            elif keep:
                out.append(
                    series.model_copy(
                        update={
                            "timestamps": [series.timestamps[i] for i in keep],
                            "values": [series.values[i] for i in keep],
                        }
                    )
                )
        return Collected(metrics=out)


class ReplayLogs(_Replay):
    name = "logs"

    def collect(self, incident: Incident) -> Collected:
        lo, hi = self._bounds(incident)
        return Collected(logs=[r for r in self._rec.logs if lo <= r.timestamp <= hi])


class ReplayTraces(_Replay):
    name = "traces"

    def collect(self, incident: Incident) -> Collected:
        lo, hi = self._bounds(incident)
        return Collected(spans=[s for s in self._rec.spans if lo <= s.start <= hi])


class ReplayTopology(_Replay):
    name = "topology"

    def collect(self, incident: Incident) -> Collected:
        return Collected(topology=self._rec.topology)


def replay_sources(recording: RecordedIncident) -> list[EvidenceSource]:
    """Sources for every kind of evidence the recording holds."""
    sources: list[EvidenceSource] = [ReplayMetrics(recording), ReplayTopology(recording)]
    if recording.logs:
        sources.append(ReplayLogs(recording))
    if recording.spans:
        sources.append(ReplayTraces(recording))
    return sources

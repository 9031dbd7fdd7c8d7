"""Alerts and incidents: what an investigation is about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AlertStatus = Literal["firing", "resolved"]
IncidentOrigin = Literal["alertmanager", "chat", "recorded", "manual"]


class TimeWindow(BaseModel):
    """A closed interval of time; ``start`` < ``end``."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime

    @property
    def start_s(self) -> float:
        return self.start.timestamp()

    @property
    def end_s(self) -> float:
        return self.end.timestamp()

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


class Alert(BaseModel):
    """One Alertmanager alert, normalised."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    name: str
    status: AlertStatus = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""

    @property
    def service(self) -> str | None:
        """The service an alert is about, from the usual label names."""
        return self.service_of(self.labels)

    @staticmethod
    def service_of(labels: dict[str, str]) -> str | None:
        """The service alert labels name (``service``, else ``app``, ``job``, ``deployment``, ``container``)."""
        for key in ("service", "app", "job", "deployment", "container"):
            value = labels.get(key)
            if value:
                return value
        return None


class Incident(BaseModel):
    """What is investigated: a group of alerts, or a question, and the time window around it."""

    id: str
    title: str
    origin: IncidentOrigin = "manual"
    group_key: str | None = None
    alerts: list[Alert] = Field(default_factory=list)
    window: TimeWindow
    alert_time: datetime | None = None
    # A period known to be normal (a fault-free recording, the same hour yesterday): where it is
    # given, logs and spans from it are the normal side of the event comparison, because the minutes
    # just before an alert are often not normal (an earlier fault, a slow start of this one).
    reference: TimeWindow | None = None
    namespace: str | None = None
    service_hint: str | None = None
    question: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Which firing of the alert group this is (1: a new incident; more: the group fired again after
    # it had resolved, and the incident was reopened), and why it is analysed the way it is.
    episode: int = 1
    episode_note: str = ""
    # When the last earlier episode of this incident, or another incident sharing a service with
    # it, resolved before this alert (the store knows; see ``store.quiet``), and which it was: the
    # normal period must not reach back into it (``evidence.coverage.after_quiet``).
    quiet_since: datetime | None = None
    quiet_after: str = ""

    @property
    def alert_names(self) -> list[str]:
        return sorted({a.name for a in self.alerts})

    @property
    def services(self) -> list[str]:
        """Services named by the alerts (or the hint), in first-seen order."""
        seen: list[str] = []
        if self.service_hint:
            seen.append(self.service_hint)
        for alert in self.alerts:
            svc = alert.service
            if svc and svc not in seen:
                seen.append(svc)
        return seen

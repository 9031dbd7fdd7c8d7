"""Turn what arrives (an Alertmanager payload, a chat message) into an ``Incident``.

Grouping follows Alertmanager: one incident per ``groupKey``. An alert is identified by its
fingerprint and ``startsAt``: the same pair delivered twice is the same alert.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from opsagent.domain import Alert, Incident, TimeWindow
from opsagent.errors import AlertPayloadError

# How much history before the alert an investigation looks at, and how long after it.
DEFAULT_LOOKBACK = timedelta(hours=2)
DEFAULT_LOOKAHEAD = timedelta(minutes=30)
_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
# The times an alert can carry: from the Unix epoch to the last instant whose nanoseconds fit an
# int64 (the limit of Prometheus and Loki timestamps). Outside them no source has data, and the
# investigation window around such a time cannot even be computed.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2262, 4, 11, tzinfo=UTC)
# RFC 3339 date-time, as Alertmanager writes it (Go's time.Time in JSON): the offset is required.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    """Only RFC 3339 strings (or datetimes, from YAML recordings) pass: pydantic alone would read
    ``5`` or ``"5"`` as a Unix timestamp and ``"2026-11-28"`` as midnight, silently misdating an alert."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise ValueError(
        f"must be an RFC 3339 timestamp string such as 2026-11-28T13:58:06Z, not {type(value).__name__} {shown}"
    )


def _as_utc(value: datetime) -> datetime:
    """A naive time (a YAML recording's) read as UTC, so it compares with the bounds."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    if not _EARLIEST <= _as_utc(value) <= _LATEST:
        raise ValueError(f"must lie between 1970-01-01 and 2262-04-11, not {value.isoformat()}")
    return value


def _unset_or_in_range(value: datetime) -> datetime:
    """Go's zero time is how Alertmanager writes an unset ``endsAt``; any other time must be real."""
    return value if _as_utc(value) <= _ZERO_TIME else _in_range(value)


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_in_range)]
EndTimestamp = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_unset_or_in_range)]


class AlertmanagerAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (version 4)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: Timestamp  # noqa: N815 - Alertmanager's field names
    endsAt: EndTimestamp | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(min_length=1, max_length=64)


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: str = Field(min_length=1, max_length=4096)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=10_000)
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815


def parse_alertmanager(raw: Any) -> AlertmanagerPayload:
    """Validate a decoded JSON payload; raise AlertPayloadError saying which field is wrong."""
    try:
        return AlertmanagerPayload.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise AlertPayloadError(f"invalid Alertmanager payload at {where}: {first['msg']}") from None


def to_alert(raw: AlertmanagerAlert) -> Alert:
    ends_at = raw.endsAt if raw.endsAt and raw.endsAt > _ZERO_TIME else None
    return Alert(
        fingerprint=raw.fingerprint,
        name=raw.labels.get("alertname", "unnamed"),
        status=raw.status,
        labels=raw.labels,
        annotations=raw.annotations,
        starts_at=raw.startsAt,
        ends_at=ends_at,
        generator_url=raw.generatorURL,
    )


def incident_id_for_group(group_key: str) -> str:
    """A stable id for a group: the same groupKey always maps to the same incident id."""
    return "inc-" + hashlib.sha256(group_key.encode()).hexdigest()[:16]


def incident_from_alertmanager(
    payload: AlertmanagerPayload,
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
    lookahead: timedelta = DEFAULT_LOOKAHEAD,
    now: datetime | None = None,
) -> Incident:
    """One incident for the payload's group; the window spans lookback before the first firing alert.

    A delivery also carries the group's recently resolved alerts, which may belong to an earlier
    firing of the group: the alert time is the earliest *firing* alert's (any alert's when none fires).
    """
    alerts = [to_alert(a) for a in payload.alerts]
    firing = [a for a in alerts if a.status == "firing"] or alerts
    first = min(a.starts_at for a in firing)
    end = first + lookahead
    if now is not None:
        end = min(end, max(now, first + timedelta(minutes=1)))
    labels = payload.commonLabels or alerts[0].labels
    summary = payload.commonAnnotations.get("summary") or alerts[0].annotations.get("summary", "")
    name = labels.get("alertname", alerts[0].name)
    where = labels.get("service") or labels.get("job") or labels.get("namespace") or ""
    title = f"{name} {where}".strip() + (f": {summary}" if summary else "")
    return Incident(
        id=incident_id_for_group(payload.groupKey),
        title=title,
        origin="alertmanager",
        group_key=payload.groupKey,
        alerts=alerts,
        window=TimeWindow(start=first - lookback, end=end),
        alert_time=first,
        namespace=labels.get("namespace"),
    )


def incident_from_question(
    question: str,
    *,
    service: str | None = None,
    now: datetime | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> Incident:
    """An incident for a chat question with no alert behind it: the last ``lookback`` of time."""
    moment = now or datetime.now(UTC)
    digest = hashlib.sha256(f"{question}|{moment.isoformat()}".encode()).hexdigest()[:16]
    return Incident(
        id=f"chat-{digest}",
        title=question[:120],
        origin="chat",
        window=TimeWindow(start=moment - lookback, end=moment),
        alert_time=moment - timedelta(minutes=15),
        service_hint=service,
        question=question,
    )

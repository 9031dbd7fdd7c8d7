"""Live logs: a Loki source (the file source is ``log_files.py``).

Both sources return raw ``LogRecord``s for the incident's window, bounded in count; fetching is all
they do. Templating and condensation are analysis (``analysis.log_digest``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from opsagent.config import LokiSettings
from opsagent.domain import EvidenceGap, Incident, LogRecord
from opsagent.errors import LogSourceError
from opsagent.evidence.base import Collected
from opsagent.evidence.prometheus import fill_template, placeholder_values

_LEVEL_WORDS = re.compile(r"\b(fatal|panic|critical|error|err|warn|warning|info|debug|trace)\b", re.I)
_LOGFMT_LEVEL = re.compile(r"\b(?:level|lvl|severity)=\"?(\w+)", re.I)
_TRANSIENT_STATUSES = {429, 502, 503, 504}
# Upstream error text quoted in a gap is cut here: enough to read, not a whole HTML error page.
_MAX_UPSTREAM_CHARS = 300


def _level_of(line: str, labels: dict[str, str], parsed: dict[str, Any] | None) -> str:
    for key in ("level", "detected_level", "severity", "lvl"):
        if labels.get(key):
            return labels[key].lower()
        if parsed and isinstance(parsed.get(key), str):
            return str(parsed[key]).lower()
    found = _LOGFMT_LEVEL.search(line) or _LEVEL_WORDS.search(line[:80])
    return found.group(1).lower() if found else "info"


def _parse_json_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def record_from_line(
    stamp: float, line: str, labels: dict[str, str], service_labels: list[str], fallback_service: str
) -> LogRecord:
    """One log line (plain, logfmt or JSON) with its stream labels → ``LogRecord``."""
    parsed = _parse_json_line(line)
    message = line
    if parsed is not None:
        for key in ("message", "msg", "log"):
            if isinstance(parsed.get(key), str):
                message = parsed[key]
                break
    service = next((labels[k] for k in service_labels if labels.get(k)), fallback_service)
    return LogRecord(timestamp=stamp, service=service, level=_level_of(line, labels, parsed), message=message)


def _upstream_error(response: httpx.Response) -> str:
    """Loki's own error text: JSON ``error``/``message`` when it sent JSON, else the body."""
    text = response.text.strip()
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        text = str(body.get("error") or body.get("message") or text)
    return f"HTTP {response.status_code}: {text[:_MAX_UPSTREAM_CHARS] or response.reason_phrase}"


class LokiSource:
    """Evidence source: ``query_range`` on Loki with a LogQL selector built from the alert's labels."""

    name = "logs"

    def __init__(self, settings: LokiSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.url:
            raise LogSourceError("no Loki URL configured (OPSAGENT_LOKI__URL)")
        self._settings = settings
        headers = {"Accept": "application/json"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        if settings.tenant:
            headers["X-Scope-OrgID"] = settings.tenant
        self._client = httpx.Client(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(5.0, settings.timeout_seconds)),
            # Connection failures are retried by the transport; HTTP statuses in ``_get``.
            transport=transport or httpx.HTTPTransport(retries=2),
        )

    def close(self) -> None:
        self._client.close()

    def query(self, incident: Incident) -> str:
        return fill_template(self._settings.query, placeholder_values(incident), unknown=".+")

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        response: httpx.Response | None = None
        for attempt in range(3):
            try:
                response = self._client.get("/loki/api/v1/query_range", params=params)
            except httpx.TimeoutException as exc:
                raise LogSourceError(f"Loki at {self._settings.url}: timed out") from exc
            except httpx.HTTPError as exc:
                raise LogSourceError(f"Loki at {self._settings.url}: cannot connect ({exc})") from exc
            if response.status_code not in _TRANSIENT_STATUSES or attempt == 2:
                break
        assert response is not None
        if response.status_code != 200:
            raise LogSourceError(f"Loki rejected the query: {_upstream_error(response)}")
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError) as exc:
            raise LogSourceError("Loki answered with something that is not JSON") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or body.get("status") != "success":
            raise LogSourceError(f"Loki answered status {body.get('status')!r}: {body.get('error', '')}")
        if data.get("resultType") != "streams":
            raise LogSourceError(
                f"Loki answered resultType {data.get('resultType')!r}; the query must select log streams"
            )
        return data

    def collect(self, incident: Incident) -> Collected:
        query = self.query(incident)
        start, end = incident.window.start_s, incident.window.end_s
        slices = max(1, self._settings.slices)
        per_slice = max(1, self._settings.limit // slices)
        fallback = incident.services[0] if incident.services else "unknown"
        records: list[LogRecord] = []
        truncated = 0
        for i in range(slices):
            lo = start + (end - start) * i / slices
            hi = start + (end - start) * (i + 1) / slices
            data = self._get(
                {
                    "query": query,
                    "start": str(int(lo * 1e9)),
                    "end": str(int(hi * 1e9)),
                    "limit": str(per_slice),
                    "direction": "backward",
                }
            )
            got = 0
            for stream in data.get("result") or []:
                labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
                for stamp_ns, line in stream.get("values") or []:
                    records.append(
                        record_from_line(
                            int(stamp_ns) / 1e9, str(line), labels, self._settings.service_labels, fallback
                        )
                    )
                    got += 1
            truncated += got >= per_slice
        records.sort(key=lambda r: r.timestamp)
        gaps = []
        if truncated:
            gaps.append(
                EvidenceGap(
                    source="logs",
                    reason=f"Loki: {truncated} of {slices} time slices hit the limit of {per_slice} lines",
                )
            )
        return Collected(logs=records, gaps=gaps)

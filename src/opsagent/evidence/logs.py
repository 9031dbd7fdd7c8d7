"""Live logs: a Loki source, a file (JSONL) source, and condensation of logs into templates.

Both sources return raw ``LogRecord``s for the incident's window, bounded in count; the engine mines
them itself. What reaches a report or an LLM is ``condense()``: Drain3 templates with counts in the
normal period and in the incident, new and increased error templates first, a few raw examples
each, within a character budget.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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


def _parse_time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class FileLogSource:
    """Evidence source: JSONL files under a folder (``OPSAGENT_LOGS_DIR``), one record per line.

    Each line: ``{"timestamp": epoch s or RFC 3339, "service": str, "level": str, "message": str}``,
    the native format's log records. Files are streamed; only the window's records are kept, at most
    ``limit`` (the latest ones, which is where the incident is).
    """

    name = "logs"

    def __init__(self, directory: Path, *, limit: int = 20_000) -> None:
        self._dir = Path(directory)
        self._limit = limit

    def _rows(self, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LogSourceError(f"{path}: line {line_no}: not JSON ({exc.msg})") from None
                if isinstance(row, dict):
                    yield line_no, row

    def collect(self, incident: Incident) -> Collected:
        if not self._dir.is_dir():
            raise LogSourceError(f"log folder {self._dir} does not exist")
        lo, hi = incident.window.start_s, incident.window.end_s
        fallback = incident.services[0] if incident.services else "unknown"
        records: list[LogRecord] = []
        for path in sorted(self._dir.rglob("*.jsonl")):
            for line_no, row in self._rows(path):
                try:
                    stamp = _parse_time(row["timestamp"])
                    message = str(row.get("message", row.get("msg", "")))
                except (KeyError, ValueError) as exc:
                    raise LogSourceError(f"{path}: line {line_no}: missing or bad field {exc}") from None
                if lo <= stamp <= hi:
                    records.append(
                        LogRecord(
                            timestamp=stamp,
                            service=str(row.get("service") or path.stem or fallback),
                            level=str(row.get("level", "info")).lower(),
                            message=message,
                        )
                    )
        records.sort(key=lambda r: r.timestamp)
        gaps = []
        if len(records) > self._limit:
            gaps.append(
                EvidenceGap(source="logs", reason=f"{len(records)} log lines, kept the last {self._limit}")
            )
            records = records[-self._limit :]
        return Collected(logs=records, gaps=gaps)


# ---------------------------------------------------------------------------------------------------
# Condensation

_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "panic", "severe"}
_ERROR_WORDS = re.compile(r"error|exception|fail|fatal|panic|timed? ?out|refused|unavailable|oom", re.I)
_MASKS = [
    (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "UUID"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "IP"),
    (r"\b(?:0x)?[0-9a-fA-F]{10,}\b", "HEX"),
    (r"(?<![A-Za-z])-?\d+(?:\.\d+)?(?:ms|s|m|h|b|kb|mb|gb|%)?\b", "NUM"),
]
_EXAMPLE_CHARS = 200


@dataclass
class LogTemplate:
    """One template of one service, counted in the normal period and in the incident."""

    service: str
    template: str
    normal_count: int = 0
    incident_count: int = 0
    error: bool = False
    examples: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.normal_count == 0 and self.incident_count > 0

    def rate_ratio(self, normal_seconds: float, incident_seconds: float) -> float:
        """Incident rate over normal rate, add-one smoothed."""
        return (self.incident_count / max(incident_seconds, 60.0)) / (
            (self.normal_count + 1) / max(normal_seconds, 60.0)
        )


@dataclass
class LogDigest:
    """What the logs say, small enough for a report or a prompt."""

    templates: list[LogTemplate]
    total_lines: int
    template_count: int
    omitted: int
    normal_seconds: float
    incident_seconds: float

    def render(self) -> str:
        lines = [
            f"{self.total_lines} log lines, {self.template_count} templates"
            + (f" ({self.omitted} not shown)" if self.omitted else "")
        ]
        lines.extend(_render_template(t) for t in self.templates)
        return "\n".join(lines)


def _render_template(t: LogTemplate) -> str:
    tag = "NEW " if t.is_new else ""
    tag += "ERROR " if t.error else ""
    head = f"- [{tag.strip() or 'info'}] {t.service}: {t.template} (normal {t.normal_count}, incident {t.incident_count})"
    return "\n".join([head, *(f"    e.g. {e}" for e in t.examples)])


def _miner() -> Any:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in _MASKS]
    config.profiling_enabled = False
    return TemplateMiner(config=config)


def _priority(t: LogTemplate, normal_s: float, incident_s: float) -> tuple[int, float]:
    """New error templates, then increased error templates, then other new ones, then the rest."""
    ratio = t.rate_ratio(normal_s, incident_s)
    if t.error and t.is_new:
        group = 0
    elif t.error and ratio > 2.0:
        group = 1
    elif t.is_new:
        group = 2
    elif ratio > 2.0:
        group = 3
    else:
        group = 4
    return group, -math.log1p(t.incident_count) * (1.0 + math.log(max(ratio, 1.0)))


def condense(
    logs: list[LogRecord],
    split: float,
    *,
    window: tuple[float, float] | None = None,
    budget_chars: int = 4_000,
    examples: int = 2,
) -> LogDigest:
    """Mine Drain3 templates per service; keep the most telling ones within ``budget_chars``.

    ``split`` divides the normal period (before) from the incident (after). Templates are ordered
    new-error, increased-error, new, increased, rest; each carries up to ``examples`` raw lines from
    the incident. The rendered digest never exceeds ``budget_chars``.
    """
    start = window[0] if window else min((r.timestamp for r in logs), default=split)
    end = window[1] if window else max((r.timestamp for r in logs), default=split)
    normal_s, incident_s = max(split - start, 0.0), max(end - split, 0.0)
    miners: dict[str, Any] = {}
    by_cluster: dict[tuple[str, int], LogTemplate] = {}
    for rec in logs:
        miner = miners.get(rec.service)
        if miner is None:
            miner = miners[rec.service] = _miner()
        cluster_id = int(miner.add_log_message(rec.message[:2_000])["cluster_id"])
        entry = by_cluster.setdefault((rec.service, cluster_id), LogTemplate(rec.service, ""))
        if rec.timestamp < split:
            entry.normal_count += 1
        else:
            entry.incident_count += 1
            if len(entry.examples) < examples:
                entry.examples.append(rec.message[:_EXAMPLE_CHARS])
        if rec.level.lower() in _ERROR_LEVELS or _ERROR_WORDS.search(rec.message):
            entry.error = True
    for (service, cluster_id), entry in by_cluster.items():
        cluster = miners[service].drain.id_to_cluster[cluster_id]
        entry.template = cluster.get_template()[:_EXAMPLE_CHARS]
    ranked = sorted(by_cluster.values(), key=lambda t: _priority(t, normal_s, incident_s))
    kept: list[LogTemplate] = []
    digest = LogDigest([], len(logs), len(ranked), 0, normal_s, incident_s)
    used = len(digest.render())
    for t in ranked:
        cost = len(_render_template(t)) + 1
        if used + cost > budget_chars:
            continue
        kept.append(t)
        used += cost
    digest.templates = kept
    digest.omitted = len(ranked) - len(kept)
    # The header grows by the "(n not shown)" note; drop tail templates until the budget holds.
    while kept and len(digest.render()) > budget_chars:
        kept.pop()
        digest.omitted += 1
    return digest

"""Log condensation: mine templates, and find new or sharply increased error templates."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from opsagent.domain import LogRecord

_MASKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:0x)?[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:ms|s|m|h|b|kb|mb|gb|%)?\b", re.I), "<num>"),
    (re.compile(r"\"[^\"]{24,}\""), "<str>"),
]
_ERROR_WORDS = re.compile(
    r"error|exception|fail|fatal|panic|timeout|timed out|refused|denied|unavailable|oom", re.I
)
_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "panic", "severe"}
# Templates are capped in length so one huge stack trace doesn't become its own budget problem.
MAX_TEMPLATE_CHARS = 240


def template_of(message: str) -> str:
    text = message.strip()
    for pattern, token in _MASKS:
        text = pattern.sub(token, text)
    return text[:MAX_TEMPLATE_CHARS]


def is_error(record: LogRecord) -> bool:
    return record.level.lower() in _ERROR_LEVELS or bool(_ERROR_WORDS.search(record.message))


@dataclass
class TemplateShift:
    service: str
    template: str
    normal_count: int
    incident_count: int
    error: bool
    score: float
    first_seen: float
    examples: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.normal_count == 0


def template_shifts(
    logs: list[LogRecord],
    split: float,
    normal_seconds: float,
    incident_seconds: float,
    *,
    examples: int = 2,
) -> list[TemplateShift]:
    """Templates whose rate rose in the incident window (new ones included), strongest first.

    The score is the log of the rate ratio with add-one smoothing, weighted up for error templates:
    a brand-new error template seen 50 times is the strongest log evidence there is.
    """
    normal: Counter[tuple[str, str]] = Counter()
    incident: Counter[tuple[str, str]] = Counter()
    errors: set[tuple[str, str]] = set()
    first: dict[tuple[str, str], float] = {}
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rec in logs:
        key = (rec.service, template_of(rec.message))
        if rec.timestamp < split:
            normal[key] += 1
        else:
            incident[key] += 1
            first.setdefault(key, rec.timestamp)
            if len(samples[key]) < examples:
                samples[key].append(rec.message[:500])
            if is_error(rec):
                errors.add(key)
    normal_s = max(normal_seconds, 60.0)
    incident_s = max(incident_seconds, 60.0)
    shifts: list[TemplateShift] = []
    for key, count in incident.items():
        before = normal[key]
        ratio = (count / incident_s) / ((before + 1) / normal_s)
        if ratio <= 2.0:
            continue
        is_err = key in errors
        score = math.log(ratio) * (2.0 if is_err else 0.5) * min(1.0, math.log1p(count) / math.log(10))
        shifts.append(
            TemplateShift(
                service=key[0],
                template=key[1],
                normal_count=before,
                incident_count=count,
                error=is_err,
                score=score,
                first_seen=first[key],
                examples=samples[key],
            )
        )
    shifts.sort(key=lambda s: -s.score)
    return shifts

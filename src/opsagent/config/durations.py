"""Durations as people write them (``90s``, ``1h30m``), for the CLI and the runbooks."""

from __future__ import annotations

import re

from opsagent.errors import InputError, OpsAgentError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, *, error: type[OpsAgentError] = InputError) -> float:
    """Seconds in ``"250ms"``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` or a plain number of seconds;
    ``error`` (a runbook's bad ``wait`` is a ``ConfigError``, a bad CLI option an ``InputError``)."""
    cleaned = "".join(text.lower().split())
    try:
        return float(cleaned)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise error(f"not a duration: {text!r} (expected e.g. 30s, 5m, 2h, 1h30m)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)

"""``config.parse_duration``: the one duration grammar of the CLI options and the runbooks' ``wait``."""

from __future__ import annotations

import pytest

from opsagent.config import parse_duration
from opsagent.errors import ConfigError, InputError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("45", 45),
        (" 5 M ", 300),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h-30m", "five minutes"])
def test_bad_durations_name_the_text(text: str) -> None:
    with pytest.raises(InputError, match="not a duration"):
        parse_duration(text)
    with pytest.raises(ConfigError):
        parse_duration(text, error=ConfigError)

"""Reasoners by name, for the CLI's ``--reasoner`` and the eval harness."""

from __future__ import annotations

from opsagent.config import Settings
from opsagent.errors import ConfigError
from opsagent.reasoning.base import Reasoner
from opsagent.reasoning.offline import OfflineReasoner

REASONERS = ("offline",)


def reasoner_by_name(name: str, settings: Settings) -> Reasoner:
    if name == "offline":
        return OfflineReasoner()
    raise ConfigError(f"unknown reasoner {name!r} (expected one of {', '.join(REASONERS)})")

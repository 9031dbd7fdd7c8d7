"""Reasoners by name, for the CLI's ``--reasoner`` and the eval harness."""

from __future__ import annotations

from opsagent.config import Settings
from opsagent.errors import ConfigError
from opsagent.reasoning.base import Reasoner
from opsagent.reasoning.offline import OfflineReasoner

REASONERS = ("offline", "llm", "baro")


def reasoner_by_name(name: str, settings: Settings) -> Reasoner:
    if name == "offline":
        return OfflineReasoner()
    if name == "baro":
        from opsagent.reasoning.baro import BaroReasoner

        return BaroReasoner()
    if name == "llm":
        # The factory binds the catalogue, runbook index and log condensation (factory.bind_reasoner).
        from opsagent.reasoning.llm import LLMReasoner, chat_model
        from opsagent.reasoning.prompts import PromptLibrary

        return LLMReasoner(settings.llm, PromptLibrary(settings.prompts_dir), model=chat_model(settings.llm))
    raise ConfigError(f"unknown reasoner {name!r} (expected one of {', '.join(REASONERS)})")

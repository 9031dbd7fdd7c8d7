"""The one registry of reasoners by name: the CLI's ``--reasoner``, the eval harness and the factory."""

from __future__ import annotations

from collections.abc import Callable

from opsagent.config import Settings
from opsagent.errors import ConfigError
from opsagent.reasoning.base import Reasoner


def _offline(settings: Settings) -> Reasoner:
    from opsagent.reasoning.offline import OfflineReasoner

    return OfflineReasoner()


def _baro(settings: Settings) -> Reasoner:
    from opsagent.reasoning.baro import BaroReasoner

    return BaroReasoner()


def _llm(settings: Settings) -> Reasoner:
    # The factory binds the catalogue, runbook index and log condensation (factory.bind_reasoner).
    from opsagent.reasoning.agent import require_endpoint
    from opsagent.reasoning.llm import LLMReasoner
    from opsagent.reasoning.prompts import PromptLibrary

    require_endpoint(settings.llm)
    return LLMReasoner(settings.llm, PromptLibrary(settings.prompts_dir))


# Adding a reasoner: a module with a class that has ``name`` and ``reason()``, and one line here.
_BUILDERS: dict[str, Callable[[Settings], Reasoner]] = {"offline": _offline, "llm": _llm, "baro": _baro}
REASONERS = tuple(_BUILDERS)


def default_reasoner_name(settings: Settings) -> str:
    """The LLM when one is configured, else the offline engine."""
    return "llm" if settings.llm.configured else "offline"


def reasoner_by_name(name: str | None, settings: Settings) -> Reasoner:
    """The reasoner called ``name`` (``None``: ``default_reasoner_name``)."""
    wanted = name or default_reasoner_name(settings)
    build = _BUILDERS.get(wanted)
    if build is None:
        raise ConfigError(f"unknown reasoner {wanted!r} (expected one of {', '.join(REASONERS)})")
    return build(settings)

"""Reasoners turn an evidence bundle and the engine's suspects into findings.

The face is light on purpose: the LLM side (``reasoning.agent``, ``reasoning.llm``,
``reasoning.chat_turn``) pulls in LangChain and the OpenAI client, so it is imported where it is used.
"""

from opsagent.reasoning.base import Reasoner, Reasoning
from opsagent.reasoning.offline import OfflineReasoner
from opsagent.reasoning.registry import REASONERS, default_reasoner_name, reasoner_by_name

__all__ = [
    "REASONERS",
    "OfflineReasoner",
    "Reasoner",
    "Reasoning",
    "default_reasoner_name",
    "reasoner_by_name",
]

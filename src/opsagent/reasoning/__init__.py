"""Reasoners turn an evidence bundle and the engine's suspects into findings."""

from opsagent.reasoning.base import Reasoner, Reasoning

__all__ = ["Reasoner", "Reasoning"]

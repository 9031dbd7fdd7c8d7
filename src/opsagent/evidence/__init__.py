"""Evidence sources behind one protocol; ``collect()`` runs them concurrently."""

from opsagent.evidence.base import Collected, EvidenceSource, collect

__all__ = ["Collected", "EvidenceSource", "collect"]

"""Runbook retrieval: a Chroma collection of runbook embeddings plus exact alert-name matching.

Indexing is incremental: a runbook is re-embedded only when its content hash changes. Retrieval
puts runbooks that name the alert first (an exact match is the strongest evidence there is), then
orders the rest by cosine similarity of the query to the runbook's summary text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsagent.domain import Incident, Runbook, RunbookMatch
from opsagent.errors import RunbookIndexError
from opsagent.evidence.base import Collected
from opsagent.evidence.embeddings import Embedder

log = logging.getLogger(__name__)

COLLECTION = "opsagent-runbooks"
# An exact alert-name match outranks any similarity score (cosine similarity is at most 1).
_ALERT_MATCH_BONUS = 1.0
_SERVICE_MATCH_BONUS = 0.2


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    unchanged: int


class RunbookIndex:
    """Runbooks in a Chroma collection (embedded on disk, or a server when ``chroma_url`` is set)."""

    def __init__(
        self,
        runbooks: list[Runbook],
        embedder: Embedder,
        *,
        chroma_path: Path | None = None,
        chroma_url: str | None = None,
    ) -> None:
        self.runbooks = {r.id: r for r in runbooks}
        self._embedder = embedder
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            chroma_settings = ChromaSettings(anonymized_telemetry=False)
            if chroma_url:
                from urllib.parse import urlparse

                url = urlparse(chroma_url)
                client: Any = chromadb.HttpClient(
                    host=url.hostname or "localhost",
                    port=url.port or 8000,
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            elif chroma_path is not None:
                chroma_path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(chroma_path), settings=chroma_settings)
            else:
                client = chromadb.EphemeralClient(settings=chroma_settings)
            # We pass vectors ourselves, so the collection has no embedding function of its own
            # (Chroma's default would try to download a model).
            name = f"{COLLECTION}-{embedder.name}"
            self._collection = client.get_or_create_collection(
                name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        except RunbookIndexError:
            raise
        except Exception as exc:
            raise RunbookIndexError(f"cannot open the runbook index: {exc}") from exc

    def sync(self) -> SyncReport:
        """Bring the collection in line with the runbooks: embed new and changed ones, drop removed ones."""
        try:
            stored = self._collection.get(include=["metadatas"])
        except Exception as exc:
            raise RunbookIndexError(f"cannot read the runbook index: {exc}") from exc
        stored_hash = {
            rid: (meta or {}).get("hash")
            for rid, meta in zip(stored["ids"], stored["metadatas"] or [], strict=False)
        }
        changed = [r for r in self.runbooks.values() if stored_hash.get(r.id) != r.content_hash]
        removed = [rid for rid in stored_hash if rid not in self.runbooks]
        if changed:
            vectors = self._embedder.embed([r.search_text() for r in changed])
            self._collection.upsert(
                ids=[r.id for r in changed],
                embeddings=vectors,
                documents=[r.search_text() for r in changed],
                metadatas=[{"hash": r.content_hash, "title": r.title} for r in changed],
            )
        if removed:
            self._collection.delete(ids=removed)
        added = sum(1 for r in changed if r.id not in stored_hash)
        return SyncReport(
            added=added,
            updated=len(changed) - added,
            removed=len(removed),
            unchanged=len(self.runbooks) - len(changed),
        )

    def search(
        self,
        query: str,
        *,
        alert_names: list[str] | None = None,
        services: list[str] | None = None,
        k: int = 5,
    ) -> list[RunbookMatch]:
        """The ``k`` best runbooks for a query, alert-name matches first."""
        if not self.runbooks:
            return []
        try:
            vector = self._embedder.embed([query])[0]
            result = self._collection.query(
                query_embeddings=[vector],
                n_results=min(len(self.runbooks), max(k * 3, 10)),
            )
        except Exception as exc:
            raise RunbookIndexError(f"runbook search failed: {exc}") from exc
        similarity = {
            rid: 1.0 - float(dist)
            for rid, dist in zip(result["ids"][0], (result["distances"] or [[]])[0], strict=False)
        }
        wanted_alerts = {a.lower() for a in alert_names or []}
        wanted_services = {s.lower() for s in services or []}
        scored: list[tuple[float, str, str]] = []
        for rid, book in self.runbooks.items():
            score = similarity.get(rid)
            reasons: list[str] = []
            alert_hit = wanted_alerts & {a.lower() for a in book.alerts}
            if alert_hit:
                score = (score or 0.0) + _ALERT_MATCH_BONUS
                reasons.append("covers alert " + ", ".join(sorted(alert_hit)))
            if wanted_services & {s.lower() for s in book.services}:
                score = (score or 0.0) + _SERVICE_MATCH_BONUS
                reasons.append("names the service")
            if score is None:
                continue
            reasons.append(f"similarity {similarity.get(rid, 0.0):.2f}")
            scored.append((score, rid, "; ".join(reasons)))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [self._match(rid, score, reason) for score, rid, reason in scored[:k]]

    def _match(self, rid: str, score: float, reason: str) -> RunbookMatch:
        book = self.runbooks[rid]
        return RunbookMatch(
            id=book.id,
            title=book.title,
            score=round(score, 4),
            reason=reason,
            path=book.path,
            remediation=book.remediation,
            actions=book.actions,
            fault_types=book.fault_types,
        )


def incident_query(incident: Incident) -> str:
    """The retrieval query for an incident: alert names, key labels, annotations, the question."""
    parts: list[str] = []
    for alert in incident.alerts:
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in {"pod", "instance"})
        parts.append(labels)
        parts.extend(alert.annotations.get(key, "") for key in ("summary", "description"))
    if incident.question:
        parts.append(incident.question)
    if not parts:
        parts.append(incident.title)
    return "\n".join(p for p in parts if p)


class RunbookSource:
    """Evidence source: the runbooks that match an incident."""

    name = "runbooks"

    def __init__(self, index: RunbookIndex, k: int = 5) -> None:
        self._index = index
        self._k = k

    def collect(self, incident: Incident) -> Collected:
        matches = self._index.search(
            incident_query(incident), alert_names=incident.alert_names, services=incident.services, k=self._k
        )
        return Collected(runbooks=matches)

"""Runbook retrieval: exact alert/service match, BM25 over the runbook text and dense similarity, fused.

Retrieval has three signals. An exact match of the alert name (or service) against a runbook's
front matter is the strongest evidence there is, so matching runbooks form the first tier. Within a
tier, runbooks are ordered by reciprocal-rank fusion of a lexical ranking (BM25 over title, alert
names split into words, symptoms, diagnosis and remediation) and a dense ranking (cosine similarity
of MiniLM embeddings in Chroma). Lexical search catches exact error strings and product names
("HikariPool", "x509", "429") that an embedding blurs; the embedding catches paraphrase ("pods keep
dying after start") that shares no word with the runbook. Rank fusion needs no score calibration
between the two, which is what makes it robust when the library grows.

Indexing is incremental: a runbook is re-embedded only when its content hash changes. The lexical
index is rebuilt in memory from the runbooks (cheap: milliseconds for a thousand).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsagent.domain import Incident, Runbook, RunbookMatch
from opsagent.errors import RunbookIndexError
from opsagent.evidence.base import Collected
from opsagent.evidence.embeddings import Embedder

log = logging.getLogger(__name__)

COLLECTION = "opsagent-runbooks"
# Scores: exact matches are tiers on top of a relevance in [0, 1] (fused rank, 1 = first in both
# rankings), so an alert-name match outranks any relevance. Callers add other evidence on this scale.
_ALERT_MATCH_BONUS = 1.0
_SERVICE_MATCH_BONUS = 0.2
# Reciprocal-rank fusion: 1 / (RRF_K + rank). 60 is the constant of Cormack et al.; a smaller one
# trusts the top of each ranking more, which suits a library where one runbook is usually right.
RRF_K = 10
LEXICAL_WEIGHT = 1.0
DENSE_WEIGHT = 1.0
_DENSE_TEXT_VERSION = "2"
# How deep each ranking is read; deeper than k so fusion can promote what one ranking missed.
_DEPTH = 50

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_STOPWORDS = (
    "a an and are as at be by for from has have how i in is it its of on or our so that the this "
    "to was we what when where which why with you your do does did can should would after before "
    "into than then there these they them not no but all any each more most some such very just"
)
_STOP = frozenset(_STOPWORDS.split())


def tokenize(text: str) -> list[str]:
    """Lower-case terms; a compound (``KubePodCrashLooping``, ``orders-db``) also yields its parts."""
    out: list[str] = []
    for raw in _TOKEN.findall(text):
        parts = [p for chunk in re.split(r"[._-]", raw) for p in _CAMEL.split(chunk) if p]
        whole = raw.lower()
        if whole not in _STOP:
            out.append(whole)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts if p.lower() not in _STOP)
    return out


class BM25:
    """Okapi BM25 over an in-memory inverted index."""

    def __init__(self, docs: dict[str, list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self._k1, self._b = k1, b
        self._ids = list(docs)
        self._len = [len(docs[i]) for i in self._ids]
        self._avg = (sum(self._len) / len(self._len)) if self._len else 1.0
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for n, doc_id in enumerate(self._ids):
            for term, tf in Counter(docs[doc_id]).items():
                self._postings.setdefault(term, []).append((n, tf))
        total = len(self._ids)
        self._idf = {
            t: math.log(1.0 + (total - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()
        }

    def rank(self, terms: list[str], depth: int) -> list[str]:
        scores: dict[int, float] = {}
        for term in set(terms):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = self._idf[term]
            for n, tf in postings:
                norm = self._k1 * (1.0 - self._b + self._b * self._len[n] / self._avg)
                scores[n] = scores.get(n, 0.0) + idf * tf * (self._k1 + 1.0) / (tf + norm)
        best = sorted(scores.items(), key=lambda kv: -kv[1])[:depth]
        return [self._ids[n] for n, _ in best]


def lexical_text(book: Runbook) -> str:
    """What BM25 indexes: the whole runbook, title and alert names counted twice (they name it)."""
    head = " ".join([book.title, *book.alerts])
    return "\n".join([head, head, " ".join(book.signals), " ".join(book.fault_types), book.body])


def dense_text(book: Runbook) -> str:
    """What is embedded: MiniLM reads ~256 word pieces, so the densest description comes first."""
    return "\n".join(
        [
            book.title,
            "alerts: " + ", ".join(book.alerts),
            "symptoms: " + "; ".join(book.symptoms),
            "diagnosis: " + "; ".join(book.diagnosis),
        ]
    )


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
        self._lexical = BM25({r.id: tokenize(lexical_text(r)) for r in runbooks})
        self._by_alert: dict[str, set[str]] = {}
        self._by_service: dict[str, set[str]] = {}
        for book in runbooks:
            for alert in book.alerts:
                self._by_alert.setdefault(alert.lower(), set()).add(book.id)
            for service in book.services:
                self._by_service.setdefault(service.lower(), set()).add(book.id)
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
        changed = [r for r in self.runbooks.values() if stored_hash.get(r.id) != _stored_hash(r)]
        removed = [rid for rid in stored_hash if rid not in self.runbooks]
        if changed:
            texts = [dense_text(r) for r in changed]
            vectors = self._embedder.embed(texts)
            self._collection.upsert(
                ids=[r.id for r in changed],
                embeddings=vectors,
                documents=texts,
                metadatas=[{"hash": _stored_hash(r), "title": r.title} for r in changed],
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
        """The ``k`` best runbooks: exact alert/service matches first, then by fused lexical+dense rank."""
        if not self.runbooks:
            return []
        depth = min(len(self.runbooks), max(k * 5, _DEPTH))
        try:
            vector = self._embedder.embed([query])[0]
            result = self._collection.query(query_embeddings=[vector], n_results=depth)
        except Exception as exc:
            raise RunbookIndexError(f"runbook search failed: {exc}") from exc
        dense = [rid for rid in result["ids"][0] if rid in self.runbooks]
        similarity = {
            rid: 1.0 - float(dist)
            for rid, dist in zip(result["ids"][0], (result["distances"] or [[]])[0], strict=False)
        }
        lexical = self._lexical.rank(tokenize(query), depth)
        fused: dict[str, float] = {}
        for weight, ranking in ((LEXICAL_WEIGHT, lexical), (DENSE_WEIGHT, dense)):
            for rank, rid in enumerate(ranking, start=1):
                fused[rid] = fused.get(rid, 0.0) + weight / (RRF_K + rank)
        best_possible = (LEXICAL_WEIGHT + DENSE_WEIGHT) / (RRF_K + 1)
        alert_hits: dict[str, set[str]] = {}
        for name in alert_names or []:
            for rid in self._by_alert.get(name.lower(), ()):
                alert_hits.setdefault(rid, set()).add(name)
        service_hits = set().union(*(self._by_service.get(s.lower(), set()) for s in services or []))
        candidates = set(fused) | set(alert_hits) | service_hits
        lexical_rank = {rid: n for n, rid in enumerate(lexical, start=1)}
        dense_rank = {rid: n for n, rid in enumerate(dense, start=1)}
        scored: list[tuple[float, str, str]] = []
        for rid in candidates:
            relevance = fused.get(rid, 0.0) / best_possible
            score = relevance
            reasons: list[str] = []
            if rid in alert_hits:
                score += _ALERT_MATCH_BONUS
                reasons.append("covers alert " + ", ".join(sorted(alert_hits[rid])))
            if rid in service_hits:
                score += _SERVICE_MATCH_BONUS
                reasons.append("names the service")
            ranks = [
                f"{label} #{table[rid]}"
                for label, table in (("lexical", lexical_rank), ("dense", dense_rank))
                if rid in table
            ]
            reasons.append(
                f"relevance {relevance:.2f} ({', '.join(ranks) or 'unranked'}; "
                f"similarity {similarity.get(rid, 0.0):.2f})"
            )
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
            queries=book.queries,
        )


def _stored_hash(book: Runbook) -> str:
    """Content hash plus the version of what is embedded, so a change of ``dense_text`` re-embeds."""
    return f"{book.content_hash}:{_DENSE_TEXT_VERSION}"


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


# What the evidence query keeps of each evidence line: its first words carry what moved (a signal's
# name, a log statement's words); the rest repeats its kind or the statement's arguments. MiniLM's
# time grows with the word pieces it reads (a Train Ticket case's four lines were ~700 characters,
# ~80 ms), and the dense ranking gains nothing from them.
EVIDENCE_LINE_WORDS = 12
# A token that varies from one occurrence to the next: a number, a time, a count ("20x"), a
# percentage. A masked placeholder ("<*>", "<num>") is one too; with brackets and separators it
# splits words (``_SEPARATORS``). None of them names a runbook's topic.
_VARIABLE = re.compile(r"[-+~]?[\d.,:]+(?:x|%|ms|s|sd)?")
_SEPARATORS = re.compile(r"<[^>]*>|[\s\[\](){},;]+")


def evidence_query(fault_type: str, service: str, summaries: list[str]) -> str:
    """The retrieval query for what the engine found: the fault type, the service, and the words of
    each evidence line (``EVIDENCE_LINE_WORDS`` of each, each word once) without the tokens that
    vary per occurrence (``_VARIABLE``)."""
    seen: set[str] = set()
    lines: list[str] = []
    for summary in summaries:
        words: list[str] = []
        for raw in _SEPARATORS.split(summary):
            word = raw.strip(":'\"")
            key = word.lower()
            if not any(c.isalnum() for c in word) or _VARIABLE.fullmatch(word) or key in seen:
                continue
            seen.add(key)
            words.append(word)
            if len(words) >= EVIDENCE_LINE_WORDS:
                break
        if words:
            lines.append(" ".join(words))
    head = f"{fault_type} problem in {service}"
    return f"{head}: {'; '.join(lines)}" if lines else head


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

"""Build the long-lived parts (runbook index, catalogue, reasoner, sources) from ``Settings``."""

from __future__ import annotations

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.config import Settings
from opsagent.domain import Runbook
from opsagent.evidence.base import EvidenceSource
from opsagent.evidence.embeddings import make_embedder
from opsagent.evidence.runbook_index import RunbookIndex, RunbookSource
from opsagent.evidence.runbooks import load_runbooks
from opsagent.pipeline import Services
from opsagent.reasoning.base import Reasoner
from opsagent.reasoning.offline import OfflineReasoner


def build_runbook_index(settings: Settings, runbooks: list[Runbook] | None = None) -> RunbookIndex:
    books = runbooks if runbooks is not None else load_runbooks(settings.runbooks_dir)
    return RunbookIndex(
        books,
        make_embedder(settings.embedding),
        chroma_path=settings.chroma_path,
        chroma_url=settings.chroma_url,
    )


def live_sources(settings: Settings) -> list[EvidenceSource]:
    """The live evidence sources configured: Prometheus (``OPSAGENT_PROMETHEUS__URL``), Loki
    (``OPSAGENT_LOKI__URL``) and log files (``OPSAGENT_LOGS_DIR``); empty when none is set."""
    from opsagent.evidence.logs import FileLogSource, LokiSource
    from opsagent.evidence.prometheus import PrometheusSource

    sources: list[EvidenceSource] = []
    if settings.prometheus.url:
        sources.append(PrometheusSource(settings.prometheus))
    if settings.loki.url:
        sources.append(LokiSource(settings.loki))
    if settings.logs_dir is not None:
        sources.append(FileLogSource(settings.logs_dir, limit=settings.loki.limit))
    return sources


def build_reasoner(settings: Settings, name: str | None = None) -> Reasoner:
    """The reasoner asked for; by default the LLM when one is configured, else the offline engine."""
    wanted = name or ("llm" if settings.llm.configured else "offline")
    if wanted == "offline":
        return OfflineReasoner()
    from opsagent.reasoning.registry import reasoner_by_name

    return reasoner_by_name(wanted, settings)


def build_services(
    settings: Settings,
    sources: list[EvidenceSource],
    *,
    index: RunbookIndex | None = None,
    reasoner: Reasoner | None = None,
) -> Services:
    """Services for ``investigate()``; the runbook source is added to the given evidence sources."""
    index = index or build_runbook_index(settings)
    index.sync()
    return Services(
        settings=settings,
        sources=[*sources, RunbookSource(index)],
        catalog=ActionCatalog.from_runbooks(index.runbooks.values()),
        reasoner=reasoner or build_reasoner(settings),
        runbooks=index,
    )

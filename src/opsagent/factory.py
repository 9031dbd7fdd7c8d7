"""The one place where long-lived parts are assembled from ``Settings``: evidence sources, the runbook
index, the reasoner, the ``Services`` an investigation runs on, the autonomy runner and its
executors, verifier and notifiers. ``serve``, ``worker``, the CLI commands and ``eval`` all build
their parts here; nothing else wires them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.config import Settings
from opsagent.domain import MetricSeries, Runbook
from opsagent.evidence.base import EvidenceSource
from opsagent.evidence.embeddings import make_embedder
from opsagent.evidence.runbook_index import RunbookIndex, RunbookSource
from opsagent.evidence.runbooks import load_runbooks
from opsagent.pipeline import Services
from opsagent.reasoning.base import Reasoner
from opsagent.reasoning.registry import reasoner_by_name
from opsagent.reasoning.tools import PromQLRunner

if TYPE_CHECKING:
    from opsagent.autonomy.approvals import ExpirySweeper
    from opsagent.autonomy.runner import ActionRunner
    from opsagent.autonomy.verify import Verifier
    from opsagent.store import Store


def build_runbook_index(settings: Settings, runbooks: list[Runbook] | None = None) -> RunbookIndex:
    books = runbooks if runbooks is not None else load_runbooks(settings.runbooks_dir)
    return RunbookIndex(
        books,
        make_embedder(
            settings.embedding,
            model=settings.embedding_model,
            base_url=settings.embedding_base_url,
            api_key=settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None,
        ),
        chroma_path=settings.chroma_path,
        chroma_url=settings.chroma_url,
    )


def live_sources(settings: Settings) -> list[EvidenceSource]:
    """The live evidence sources configured: Prometheus (``OPSAGENT_PROMETHEUS__URL``), Loki
    (``OPSAGENT_LOKI__URL``), log files (``OPSAGENT_LOGS_DIR``) and the call graph
    (``OPSAGENT_TOPOLOGY__FILE`` / ``__CALLS``); empty when none is set."""
    from opsagent.evidence.log_files import FileLogSource
    from opsagent.evidence.loki import LokiSource
    from opsagent.evidence.prometheus import PrometheusSource
    from opsagent.evidence.topology import ConfiguredTopology

    sources: list[EvidenceSource] = []
    if settings.prometheus.url:
        sources.append(PrometheusSource(settings.prometheus))
    if settings.loki.url:
        sources.append(LokiSource(settings.loki))
    if settings.logs_dir is not None:
        sources.append(FileLogSource(settings.logs_dir, settings.file_logs))
    topology = ConfiguredTopology(settings.topology)
    if topology.configured:
        sources.append(topology)
    return sources


def build_reasoner(settings: Settings, name: str | None = None) -> Reasoner:
    """The reasoner asked for (``reasoning.registry``); by default the LLM when one is configured,
    else the offline engine."""
    return reasoner_by_name(name, settings)


def build_services(
    settings: Settings,
    sources: list[EvidenceSource] | None = None,
    *,
    index: RunbookIndex | None = None,
    reasoner: Reasoner | str | None = None,
) -> Services:
    """Services for ``investigate()``: the runbook source is added to ``sources`` (``None``: the
    live sources of ``settings``); ``reasoner`` is one, or a name for ``build_reasoner``."""
    if sources is None:
        sources = live_sources(settings)
    index = index or build_runbook_index(settings)
    index.sync()
    catalog = ActionCatalog.from_runbooks(index.runbooks.values())
    chosen = (
        reasoner
        if reasoner is not None and not isinstance(reasoner, str)
        else build_reasoner(settings, reasoner)
    )
    return Services(
        settings=settings,
        sources=[*sources, RunbookSource(index)],
        catalog=catalog,
        reasoner=bind_reasoner(chosen, settings, catalog, index),
        runbooks=index,
    )


def bind_reasoner(
    reasoner: Reasoner, settings: Settings, catalog: ActionCatalog, index: RunbookIndex
) -> Reasoner:
    """Give the LLM reasoner the services' catalogue and runbook index, the log condensation the
    report uses (``analysis.log_summary``) and, when configured, live PromQL: its tools read the
    same evidence layer, not a second one."""
    if reasoner.name != "llm":
        return reasoner
    from opsagent.analysis.log_summary import summarize_logs
    from opsagent.reasoning.llm import LLMReasoner

    if not isinstance(reasoner, LLMReasoner):
        return reasoner
    return reasoner.bound(
        catalog=catalog,
        runbooks=index,
        condense_logs=lambda bundle, suspects, service: summarize_logs(bundle, suspects, service=service),
        promql=live_promql(settings),
    )


def live_promql(settings: Settings) -> PromQLRunner | None:
    """Ad-hoc PromQL for the LLM's ``query_metrics`` tool, bounded like the Prometheus source."""
    if not settings.prometheus.url:
        return None
    from opsagent.evidence.prometheus import PrometheusSource, plan_range

    source = PrometheusSource(settings.prometheus)

    def run(promql: str, start: float, end: float) -> list[MetricSeries]:
        window = plan_range(start, end, settings.prometheus)
        return source.series_for("promql", source.query_range(promql, window), "unlabelled")

    return run


def build_action_runner(
    settings: Settings, store: Store, catalog: ActionCatalog, *, verifier: Verifier | None = None
) -> ActionRunner:
    """The autonomy runner on the database seams, with the executors, verifier and notifiers the
    settings configure (``verifier`` replaces the Prometheus one, e.g. for a recording)."""
    from opsagent.autonomy.executors import Executors
    from opsagent.autonomy.notify import Notifiers
    from opsagent.autonomy.runner import ActionRunner, RunnerParts
    from opsagent.autonomy.verify import PrometheusVerifier
    from opsagent.store.actions import SqlActionStore, SqlAuditLog, SqlKillSwitch

    policy = settings.autonomy
    if verifier is None and settings.prometheus.url:
        verifier = PrometheusVerifier(
            settings.prometheus,
            poll_seconds=policy.verify_poll_seconds,
            max_wait_seconds=policy.verify_max_wait_seconds,
        )
    return ActionRunner(
        RunnerParts(
            level=settings.autonomy_level,
            policy=policy,
            catalog=catalog,
            executors=Executors.from_settings(policy),
            store=SqlActionStore(store),
            audit=SqlAuditLog(store),
            kill_switch=SqlKillSwitch(store),
            verifier=verifier,
            notifiers=Notifiers.from_settings(settings.notify),
        )
    )


def start_expiry_sweeper(settings: Settings, store: Store) -> ExpirySweeper:
    """The periodic expiry of pending approvals for a process on ``store`` (API lifespan, worker)."""
    from opsagent.autonomy.approvals import Approvals, ExpirySweeper
    from opsagent.store.actions import SqlActionStore, SqlAuditLog

    approvals = Approvals(SqlActionStore(store), SqlAuditLog(store))
    return ExpirySweeper(approvals, settings.autonomy.approval_sweep_seconds).start()

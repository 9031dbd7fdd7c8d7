"""Run recorded cases through the real pipeline and collect what scoring and reports need.

Every case goes through ``pipeline.investigate()`` with services from ``factory.build_services``
and replay sources, exactly like a live incident. The long-lived parts (runbook index with its
embedding model, catalogue, reasoner) are built once per process and reused for every case.

With ``jobs > 1`` cases run in worker processes; each worker loads its own cases (only references
and small results cross process boundaries) and takes consecutive cases in small chunks, so the
per-process caches of the dataset importers (Nezha's minute files) are reused.
"""

from __future__ import annotations

import concurrent.futures as futures
import gc
import hashlib
import json
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from opsagent.config import Settings
from opsagent.domain import AutonomyLevel, Investigation, RecordedIncident
from opsagent.errors import InputError, OpsAgentError
from opsagent.evals.accuracy import rank_of, runbook_fits
from opsagent.evals.cases import CaseRef
from opsagent.evals.discover import load_case
from opsagent.evals.replay import replay_sources
from opsagent.evidence.embeddings import Embedder
from opsagent.pipeline import Services
from opsagent.report import reasoner_detail

# Root causes and evidence lines kept per case for the reports.
_KEEP_CAUSES = 5
_KEEP_EVIDENCE = 4
_KEEP_RANKING = 20
_KEEP_RUNBOOKS = 3


@dataclass
class CaseResult:
    """One evaluated case: the stable report fields first, then details for the HTML page."""

    dataset: str
    id: str
    truth: dict[str, Any]
    ranking: list[str]
    rank_of_truth: int | None
    # End to end: reading the recording (``load_seconds`` of it) and the whole investigation.
    seconds: float
    fault_type_correct: bool | None = None
    predicted_fault_type: str | None = None
    load_seconds: float = 0.0
    tokens: dict[str, int] | None = None
    # The LLM's own share of ``seconds`` and its model calls (LLM reasoner only).
    llm_seconds: float | None = None
    llm_steps: int | None = None
    reasoner_detail: str = ""
    fell_back: bool = False
    error: str | None = None
    summary: str = ""
    root_causes: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, int] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    window: dict[str, str] = field(default_factory=dict)
    # The runbooks the investigation offers, best first (the first one's remediation is the advice),
    # and whether that first one is right (``accuracy.runbook_fits``).
    runbooks: list[str] = field(default_factory=list)
    runbook_fits: bool | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for optional in ("tokens", "llm_seconds", "llm_steps"):
            if data[optional] is None:
                del data[optional]
        if data["error"] is None:
            del data["error"]
        return data


def eval_settings(settings: Settings) -> Settings:
    """Evaluation investigates but never acts: the autonomy level is pinned to L1 (assisted)."""
    return settings.model_copy(update={"autonomy_level": AutonomyLevel.L1})


class CachedEmbedder:
    """An embedder that answers known texts from a table and embeds only the rest.

    Embedding the whole runbook library takes seconds of CPU; every worker process would pay
    it again: the table is kept on disk between runs, keyed by text hash.
    """

    def __init__(self, inner: Embedder, known: dict[str, list[float]]) -> None:
        self.name = inner.name
        self._inner = inner
        self.known = dict(known)
        self.used: set[str] = set()
        self.computed = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        keys = [_text_key(t) for t in texts]
        missing = [t for t, k in zip(texts, keys, strict=True) if k not in self.known]
        if missing:
            for text, vector in zip(missing, self._inner.embed(missing), strict=True):
                self.known[_text_key(text)] = vector
            self.computed += len(missing)
        self.used.update(keys)
        return [self.known[k] for k in keys]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _vector_cache(settings: Settings) -> Path:
    return settings.data_dir / "eval" / f"runbook-vectors-{settings.embedding}.json"


def _read_vectors(path: Path) -> dict[str, list[float]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_vectors(path: Path, table: dict[str, list[float]]) -> None:
    # Written whole and renamed into place: worker processes may finish embedding at once.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # only a cache: the next run embeds again


def build_eval_services(settings: Settings, reasoner_name: str) -> Services:
    """Services without evidence sources (each case adds its replay sources), built once per process.

    The runbook index lives in memory: worker processes must not share one on-disk Chroma store,
    and an evaluation must not change the user's index. Runbook embeddings come from a cache
    on disk (keyed by text hash) when the runbooks have not changed since the last run.
    """
    from opsagent.evidence.embeddings import make_embedder
    from opsagent.evidence.runbook_index import RunbookIndex
    from opsagent.evidence.runbooks import load_runbooks
    from opsagent.factory import build_services

    settings = eval_settings(settings)
    cache = _vector_cache(settings)
    embedder = CachedEmbedder(make_embedder(settings.embedding), _read_vectors(cache))
    index = RunbookIndex(load_runbooks(settings.runbooks_dir), embedder)
    services = build_services(settings, [], index=index, reasoner=reasoner_name)
    # Log templates feed reports and the LLM's prompt; the scores need neither, and Drain3 costs
    # seconds per case on large datasets.
    services.summarize_logs = reasoner_name == "llm"
    if embedder.computed:
        _write_vectors(cache, {k: embedder.known[k] for k in embedder.used})
    return services


def _truth_json(recording: RecordedIncident) -> dict[str, Any]:
    truth = recording.truth
    if truth is None:
        return {}
    return {
        "service": truth.service,
        "fault_type": truth.fault_type.value if truth.fault_type else None,
        "fault_label": truth.fault_label,
        "runbook": truth.runbook,
    }


def _result(recording: RecordedIncident, inv: Investigation, seconds: float, load_s: float) -> CaseResult:
    truth = recording.truth
    ranking = list(inv.findings.ranking)
    predicted = inv.findings.root_causes[0].fault_type.value if inv.findings.root_causes else None
    fault_ok: bool | None = None
    if truth is not None and truth.fault_type is not None:
        fault_ok = predicted == truth.fault_type.value
    trace = inv.trace
    llm = trace.reasoner == "llm"
    tokens = None
    if llm or trace.prompt_tokens or trace.completion_tokens:
        # From the API's usage fields, summed over the investigation's model calls.
        tokens = {"prompt": trace.prompt_tokens, "completion": trace.completion_tokens}
    window = recording.incident.window
    return CaseResult(
        dataset=recording.dataset,
        id=recording.case_id,
        truth=_truth_json(recording),
        ranking=ranking[:_KEEP_RANKING],
        rank_of_truth=rank_of(ranking, truth.service) if truth else None,
        seconds=round(seconds, 4),
        fault_type_correct=fault_ok,
        predicted_fault_type=predicted,
        load_seconds=round(load_s, 4),
        tokens=tokens,
        llm_seconds=trace.seconds if llm else None,
        llm_steps=trace.steps if llm else None,
        reasoner_detail=reasoner_detail(trace, inv.findings.reasoner),
        fell_back=trace.fell_back,
        summary=inv.findings.summary,
        root_causes=[
            {
                "service": rc.service,
                "fault_type": rc.fault_type.value,
                "confidence": rc.confidence,
                "evidence": [e.summary for e in rc.evidence[:_KEEP_EVIDENCE]],
            }
            for rc in inv.findings.root_causes[:_KEEP_CAUSES]
        ],
        evidence=inv.evidence.model_dump(),
        gaps=[f"{g.source}: {g.reason}" for g in inv.gaps],
        window={
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "alert": recording.incident.alert_time.isoformat() if recording.incident.alert_time else "",
        },
        runbooks=[r.id for r in inv.runbooks[:_KEEP_RUNBOOKS]],
        runbook_fits=runbook_fits(truth, inv.runbooks),
    )


def run_case(ref: CaseRef, services: Services, alert_delay: float = 0.0) -> CaseResult:
    """Load and investigate one case. Unusable input raises InputError; anything else the
    pipeline throws is recorded on the result (a miss), so one bad case does not end a run.

    ``alert_delay``: seconds to move the recorded alert time by (``delayed_alert``).
    """
    # The garbage collector stays off during a case and ignores what the process already holds (the
    # importers' parsed files: hundreds of thousands of objects). A case creates a few hundred
    # thousand more, and each pass walked them again (~0.25 s of a Train Ticket case's ~1.4 s).
    # Unused objects are still freed by reference counting; the case's cyclic garbage is collected
    # once at its end (``_run_case``, within its time).
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_case(ref, services, alert_delay)
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def _run_case(ref: CaseRef, services: Services, alert_delay: float) -> CaseResult:
    from opsagent.pipeline import investigate

    started = time.perf_counter()
    try:
        recording = delayed_alert(load_case(ref), alert_delay)
    except InputError:
        raise
    except OpsAgentError as exc:
        raise InputError(str(exc)) from None
    load_s = time.perf_counter() - started
    # What loading made is the importers' file cache, long-lived, and the recording, which holds no
    # reference cycle (none found after loading any Train Ticket case): frozen, the collection at the
    # case's end walks only what the investigation made (0.026 -> 0.009 s on a Train Ticket case).
    gc.freeze()
    case_services = services.with_sources([*replay_sources(recording), *services.sources])
    try:
        inv = investigate(recording.incident, case_services)
    except Exception as exc:
        gc.collect()
        return CaseResult(
            dataset=recording.dataset,
            id=recording.case_id,
            truth=_truth_json(recording),
            ranking=[],
            rank_of_truth=None,
            seconds=round(time.perf_counter() - started, 4),
            load_seconds=round(load_s, 4),
            error=f"{type(exc).__name__}: {exc}",
        )
    result = _result(recording, inv, 0.0, load_s)
    # The case's cyclic garbage (``run_case``), counted in its time. Collected once the case's own
    # objects are released: while the recording and the investigation are still held, the pass walks
    # every one of them too (half again as long on a Train Ticket case) and frees none of them.
    del recording, inv, case_services
    gc.collect()
    result.seconds = round(time.perf_counter() - started, 4)
    return result


def delayed_alert(recording: RecordedIncident, seconds: float) -> RecordedIncident:
    """The recording with its alert ``seconds`` later (earlier when negative), data unchanged.

    Datasets record a fault's injection time as its alert time. A real alert fires after its
    rule's ``for:`` duration and evaluation interval; moving the alert measures how much of the
    accuracy rests on the alert coming on time.
    """
    alert = recording.incident.alert_time
    if not seconds or alert is None:
        return recording
    moved = alert + timedelta(seconds=seconds)
    window = recording.incident.window
    if not window.start <= moved <= window.end:
        raise InputError(
            f"{recording.dataset}/{recording.case_id}: an alert {seconds:+g}s from {alert.isoformat()}"
            f" falls outside the recording ({window.start.isoformat()} .. {window.end.isoformat()})"
        )
    incident = recording.incident.model_copy(update={"alert_time": moved})
    return recording.model_copy(update={"incident": incident})


# --- worker processes -------------------------------------------------------------------------

_worker_services: Services | None = None
_worker_progress: Any = None
_worker_alert_delay = 0.0


def _init_worker(settings: Settings, reasoner_name: str, progress: Any, alert_delay: float) -> None:
    global _worker_services, _worker_progress, _worker_alert_delay
    _worker_progress = progress
    _worker_alert_delay = alert_delay
    _worker_services = build_eval_services(settings, reasoner_name)


def _run_chunk(refs: list[CaseRef]) -> list[CaseResult]:
    assert _worker_services is not None, "worker not initialised"
    out: list[CaseResult] = []
    for ref in refs:
        out.append(run_case(ref, _worker_services, _worker_alert_delay))
        if _worker_progress is not None:
            _worker_progress.put(1)
    return out


def _chunks(refs: Sequence[CaseRef], jobs: int) -> list[list[CaseRef]]:
    """Each dataset split into ``jobs`` contiguous parts, in dataset order.

    Contiguous: neighbouring cases of a dataset share files (Nezha's minute files overlap from
    one fault's window to the next), so a worker that takes a run of them parses each file once.
    One part per worker and dataset keeps the workers about equally busy, since cases of one
    dataset cost about the same.
    """
    groups: dict[str, list[CaseRef]] = {}
    for ref in refs:
        groups.setdefault(ref.dataset, []).append(ref)
    out: list[list[CaseRef]] = []
    for members in groups.values():
        size = -(-len(members) // jobs)
        out.extend(members[i : i + size] for i in range(0, len(members), size))
    return out


def run_cases(
    refs: Sequence[CaseRef],
    settings: Settings,
    reasoner_name: str,
    *,
    jobs: int = 1,
    on_progress: Callable[[int], None] | None = None,
    alert_delay: float = 0.0,
) -> list[CaseResult]:
    """Results in the order of ``refs``; raises InputError (naming the file) on unusable input.
    ``alert_delay``: see ``delayed_alert``."""
    advance = on_progress or (lambda _n: None)
    if jobs <= 1 or len(refs) <= 1:
        services = build_eval_services(settings, reasoner_name)
        results = []
        for ref in refs:
            results.append(run_case(ref, services, alert_delay))
            advance(1)
        return results
    # Spawned, not forked: the parent may hold threads (progress display) and native libraries.
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Queue()
    chunks = _chunks(refs, jobs)
    results_by_chunk: dict[int, list[CaseResult]] = {}
    with futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(settings, reasoner_name, progress, alert_delay),
    ) as pool:
        pending = {pool.submit(_run_chunk, chunk): i for i, chunk in enumerate(chunks)}
        try:
            while pending:
                done, _ = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
                _drain(progress, advance)
                for future in done:
                    index = pending.pop(future)
                    results_by_chunk[index] = future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        _drain(progress, advance)
    by_ref = {
        id(ref): result
        for i, chunk in enumerate(chunks)
        for ref, result in zip(chunk, results_by_chunk[i], strict=True)
    }
    return [by_ref[id(ref)] for ref in refs]


def _drain(progress: Any, advance: Callable[[int], None]) -> None:
    while True:
        try:
            advance(progress.get_nowait())
        except queue.Empty:
            return


__all__ = ["CaseResult", "build_eval_services", "run_case", "run_cases"]

"""Hybrid runbook retrieval: tokenizer, BM25, exact-match tier, fusion; Chroma in server mode."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsagent.domain import Runbook
from opsagent.evidence.embeddings import HashingEmbedding
from opsagent.evidence.runbook_index import BM25, RunbookIndex, tokenize
from opsagent.evidence.runbooks import load_runbooks

from ..support.demo_prometheus import ROOT
from ..support.servers import free_port, stop, wait_http


def book(rid: str, title: str, alerts: list[str], body: str, services: list[str] | None = None) -> Runbook:
    return Runbook(
        id=rid, title=title, alerts=alerts, services=services or [], body=body, content_hash=rid + body
    )


BOOKS = [
    book("pool", "Database connection pool exhausted", ["HighErrorRate"], "HikariPool timeout acquiring connection"),
    book("deploy", "Bad deploy raising the error rate", ["HighErrorRate"], "new ReplicaSet rollout errors rollback"),
    book("tls", "TLS certificate expiring", ["CertificateExpiringSoon"], "x509 certificate has expired renew cert-manager"),
    book("disk", "Node filesystem full", ["NodeFilesystemAlmostOutOfSpace"], "disk full df du", ["storage"]),
]  # fmt: skip


def test_tokenize_splits_compounds_and_drops_stopwords() -> None:
    assert tokenize("KubePodCrashLooping in orders-db") == [
        "kubepodcrashlooping", "kube", "pod", "crash", "looping", "orders-db", "orders", "db",
    ]  # fmt: skip
    assert "x509" in tokenize("x509: certificate has expired")


def test_bm25_prefers_rare_terms() -> None:
    index = BM25({b.id: tokenize(b.title + " " + b.body) for b in BOOKS})
    assert index.rank(tokenize("x509 error"), 2)[0] == "tls"
    assert index.rank(tokenize("HikariPool"), 3) == ["pool"]
    assert index.rank(["nothing-matches"], 3) == []


def test_alert_match_is_a_tier_and_text_decides_within_it(tmp_path: Path) -> None:
    index = RunbookIndex(BOOKS, HashingEmbedding(), chroma_path=tmp_path / "c")
    index.sync()
    pool = index.search("HikariPool timeout acquiring connection", alert_names=["HighErrorRate"], k=4)
    assert [m.id for m in pool[:2]] == ["pool", "deploy"]
    assert all("covers alert HighErrorRate" in m.reason for m in pool[:2])
    assert pool[0].score > 1.0 > pool[2].score
    deploy = index.search("errors right after the rollout", alert_names=["HighErrorRate"], k=2)
    assert deploy[0].id == "deploy"
    # Without an alert name the text alone ranks; a service named by a runbook lifts it.
    assert index.search("certificate expired", k=1)[0].id == "tls"
    assert index.search("something odd", services=["storage"], k=1)[0].id == "disk"


def test_a_changed_dense_text_or_runbook_is_re_embedded(tmp_path: Path) -> None:
    first = RunbookIndex(BOOKS, HashingEmbedding(), chroma_path=tmp_path / "c").sync()
    assert first.added == len(BOOKS)
    edited = [*BOOKS[:3], book("disk", "Node filesystem full", [], "changed body")]
    again = RunbookIndex(edited, HashingEmbedding(), chroma_path=tmp_path / "c").sync()
    assert (again.added, again.updated, again.unchanged) == (0, 1, 3)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(binary).exists():
        pytest.fail("the chroma CLI (from the chromadb package) is missing")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [binary, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v2/heartbeat", 30, proc=proc, interval=0.2)
        yield url
    finally:
        stop(proc)


@pytest.mark.integration
def test_chroma_server_mode_indexes_incrementally_and_searches(chroma_server: str) -> None:
    books = load_runbooks(ROOT / "runbooks")
    first = RunbookIndex(books, HashingEmbedding(), chroma_url=chroma_server).sync()
    assert first.added + first.unchanged == len(books)
    again = RunbookIndex(books, HashingEmbedding(), chroma_url=chroma_server)
    assert again.sync().unchanged == len(books)
    top = again.search("pod killed out of memory", alert_names=["PodOOMKilled"], k=3)
    assert top[0].id == "memory-leak-oomkilled"

"""Runbook retrieval benchmark: recall@1, recall@3 and query latency on the labelled query set.

Runs the production retrieval (``RunbookIndex`` with the configured default embedding) twice: on the
real library (``runbooks/``) and on that library padded with synthetic runbooks to 1,000, which is
the scale figure. Alert queries pass their ``alertname`` and ``service`` to the exact-match stage,
as ``RunbookSource`` does for a real alert; chat queries are text only.

    python -m bench retrieval          # or: make bench
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from opsagent.domain import Runbook
from opsagent.evidence.embeddings import Embedder, make_embedder
from opsagent.evidence.runbook_index import RunbookIndex
from opsagent.evidence.runbooks import load_runbooks

ROOT = Path(__file__).resolve().parent.parent
QUERIES = Path(__file__).resolve().parent / "retrieval_queries.yaml"
SCALE = 1_000
TARGETS = {"recall@3": 0.95, "recall@1": 0.85, "p50_ms@1000": 30.0}
_LABEL = re.compile(r"\b(alertname|service)=([^\s,]+)")


@dataclass(frozen=True)
class Query:
    text: str
    kind: str
    expected: str

    @property
    def alert_names(self) -> list[str]:
        return [v for k, v in _LABEL.findall(self.text) if k == "alertname"] if self.kind == "alert" else []

    @property
    def services(self) -> list[str]:
        return [v for k, v in _LABEL.findall(self.text) if k == "service"] if self.kind == "alert" else []


def load_queries(path: Path = QUERIES) -> list[Query]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Query(text=str(q["query"]), kind=str(q["kind"]), expected=str(q["expected"])) for q in raw]


# --- synthetic runbooks: plausible distractors sharing the real library's vocabulary -------------

_COMPONENTS = [
    "PostgreSQL", "MySQL", "Redis", "Kafka", "RabbitMQ", "NGINX", "Envoy", "etcd", "CoreDNS",
    "Elasticsearch", "Memcached", "ZooKeeper", "Consul", "Vault", "MinIO", "Cassandra", "MongoDB",
    "ClickHouse", "HAProxy", "Istio", "Jenkins", "Argo CD", "Grafana", "Thanos", "KEDA", "Celery",
    "Sidekiq", "Spark", "Flink", "Airflow", "Traefik", "Keycloak", "NATS", "Pulsar", "CockroachDB",
    "Ceph", "Longhorn", "Velero", "Fluent Bit", "OpenTelemetry Collector",
]  # fmt: skip
_SERVICES = [
    "billing", "search", "payments", "ledger", "catalog", "identity", "notifications", "reporting",
    "shipping", "pricing", "fraud", "analytics", "media", "gateway", "accounts", "invoicing",
]  # fmt: skip
# (title, alert suffix, signal, symptom, diagnosis step, remediation step)
_PROBLEMS = [
    ("backup job failing", "BackupFailed", "errors", "nightly backup exits non-zero", "read the backup job's logs for the failing step", "re-run the backup after fixing credentials"),
    ("high request latency", "LatencyHigh", "latency", "p99 latency above the SLO", "compare latency per endpoint and per pod", "scale out or roll back the slow change"),
    ("too many open connections", "TooManyConnections", "saturation", "connection count near the configured maximum", "list clients by connection count", "raise the limit or fix the leaking client"),
    ("disk usage high", "DiskUsageHigh", "disk", "data volume above 85% full", "find the largest directories and retention settings", "expand the volume or shorten retention"),
    ("memory usage high", "MemoryHigh", "memory", "resident memory close to the container limit", "take a heap profile and compare with last week", "raise the limit or restart to buy time"),
    ("leader election flapping", "LeaderChanges", "errors", "leader changes several times per hour", "check network latency between members", "stabilise the network or increase election timeouts"),
    ("certificate rotation failed", "CertRotationFailed", "errors", "TLS handshake failures after rotation", "inspect the secret and the issuer status", "re-issue the certificate and reload"),
    ("quota exceeded", "QuotaExceeded", "errors", "requests rejected with quota errors", "list the top consumers of the quota", "raise the quota or throttle the noisy tenant"),
    ("replica out of sync", "ReplicaOutOfSync", "saturation", "a replica lags behind the primary", "compare replication offsets", "resync or rebuild the replica"),
    ("high CPU", "CPUHigh", "cpu", "CPU usage at the limit for a sustained period", "profile the hottest code paths", "scale out or optimise the hot path"),
    ("slow startup", "SlowStartup", "latency", "readiness takes minutes after restart", "time each init step from the logs", "warm caches lazily or raise the startup probe budget"),
    ("authentication errors", "AuthErrorsHigh", "errors", "401 and 403 responses rising", "check token expiry and clock skew", "rotate the credentials and sync clocks"),
    ("dropped messages", "MessagesDropped", "errors", "messages dropped or dead-lettered", "inspect the dead-letter queue", "replay dead letters after fixing the consumer"),
    ("config drift", "ConfigDrift", "errors", "live configuration differs from git", "diff the live config against the repository", "re-apply the declared configuration"),
    ("license expiring", "LicenseExpiring", "errors", "licence expires within 14 days", "check the licence server", "renew and install the new licence"),
    ("garbage build-up", "CompactionBehind", "disk", "compaction backlog growing", "check compaction throughput", "add compaction workers"),
]  # fmt: skip


def synthetic_runbooks(count: int, seed: int = 5) -> list[Runbook]:
    rng = random.Random(seed)
    out: list[Runbook] = []
    for n in range(count):
        component = rng.choice(_COMPONENTS)
        title, suffix, signal, symptom, diagnosis, remediation = rng.choice(_PROBLEMS)
        service = rng.choice(_SERVICES)
        camel = re.sub(r"[^A-Za-z0-9]", "", component)
        alert = f"{camel}{suffix}"
        body = (
            f"# {component} {title} ({service})\n\n{component} used by {service}: {symptom}.\n\n"
            f"## Symptoms\n- {symptom.capitalize()} on {component}.\n- {service} reports elevated {signal}.\n\n"
            f"## Diagnosis\n1. {diagnosis.capitalize()}.\n2. Check recent changes to {component} and {service}.\n\n"
            f"## Remediation\n1. {remediation.capitalize()}.\n2. Confirm {signal} is back to normal.\n"
        )
        out.append(
            Runbook(
                id=f"synthetic-{n:04d}",
                title=f"{component} {title} ({service})",
                alerts=[alert],
                services=[service] if rng.random() < 0.5 else [],
                signals=[signal],
                symptoms=[f"{symptom.capitalize()} on {component}.", f"{service} reports elevated {signal}."],
                diagnosis=[
                    f"{diagnosis.capitalize()}.",
                    f"Check recent changes to {component} and {service}.",
                ],
                remediation=[f"{remediation.capitalize()}.", f"Confirm {signal} is back to normal."],
                body=body,
                content_hash=f"synthetic-{seed}-{n}",
            )
        )
    return out


# --- measurement ----------------------------------------------------------------------------------


@dataclass
class Result:
    library: int
    recall1: float
    recall3: float
    p50_ms: float
    p95_ms: float
    by_kind: dict[str, tuple[float, float]]
    misses: list[tuple[Query, list[str]]]
    index_seconds: float


def measure(books: list[Runbook], queries: list[Query], embedder: Embedder, workdir: Path) -> Result:
    started = time.perf_counter()
    index = RunbookIndex(books, embedder, chroma_path=workdir)
    index.sync()
    index_seconds = time.perf_counter() - started
    index.search("warm-up", k=3)  # first query pays for lazy initialisation
    hits1: dict[str, list[bool]] = {}
    hits3: dict[str, list[bool]] = {}
    latencies: list[float] = []
    misses: list[tuple[Query, list[str]]] = []
    for q in queries:
        t0 = time.perf_counter()
        top = index.search(q.text, alert_names=q.alert_names, services=q.services, k=3)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        ids = [m.id for m in top]
        hits1.setdefault(q.kind, []).append(ids[:1] == [q.expected])
        hits3.setdefault(q.kind, []).append(q.expected in ids)
        if ids[:1] != [q.expected]:
            misses.append((q, ids))
    all1 = [h for v in hits1.values() for h in v]
    all3 = [h for v in hits3.values() for h in v]
    cuts = statistics.quantiles(latencies, n=20)
    return Result(
        library=len(books),
        recall1=sum(all1) / len(all1),
        recall3=sum(all3) / len(all3),
        p50_ms=statistics.median(latencies),
        p95_ms=cuts[18],
        by_kind={k: (sum(hits1[k]) / len(hits1[k]), sum(hits3[k]) / len(hits3[k])) for k in sorted(hits1)},
        misses=misses,
        index_seconds=index_seconds,
    )


def report(name: str, r: Result) -> None:
    kinds = "  ".join(f"{k}: r@1 {a:.3f} r@3 {b:.3f}" for k, (a, b) in r.by_kind.items())
    print(
        f"{name:<14} runbooks {r.library:>5}  recall@1 {r.recall1:.3f}  recall@3 {r.recall3:.3f}  "
        f"p50 {r.p50_ms:6.1f} ms  p95 {r.p95_ms:6.1f} ms  (indexed in {r.index_seconds:.1f}s)"
    )
    print(f"{'':<14} {kinds}")


def main() -> int:
    queries = load_queries()
    real = load_runbooks(ROOT / "runbooks")
    known = {b.id for b in real}
    unknown = sorted({q.expected for q in queries} - known)
    if unknown:
        print(f"queries expect runbooks that do not exist: {', '.join(unknown)}")
        return 1
    embedder = make_embedder("minilm")
    print(f"{len(queries)} queries ({sum(q.kind == 'alert' for q in queries)} alert, "
          f"{sum(q.kind == 'chat' for q in queries)} chat); embedding {embedder.name}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="opsagent-bench-") as tmp:
        small = measure(real, queries, embedder, Path(tmp) / "real")
        large = measure(real + synthetic_runbooks(SCALE - len(real)), queries, embedder, Path(tmp) / "scaled")
    report("real library", small)
    report(f"scaled to {SCALE}", large)
    if small.misses:
        print("\nmisses at rank 1 on the real library (expected → got):")
        for q, ids in small.misses:
            print(f"  [{q.kind}] {q.text[:90]!r}\n      {q.expected} → {', '.join(ids)}")
    met = (
        small.recall3 >= TARGETS["recall@3"]
        and small.recall1 >= TARGETS["recall@1"]
        and large.p50_ms < TARGETS["p50_ms@1000"]
    )
    print(
        f"\ntargets (recall@3 ≥ {TARGETS['recall@3']}, recall@1 ≥ {TARGETS['recall@1']} on the real library; "
        f"p50 < {TARGETS['p50_ms@1000']:g} ms at {SCALE}): {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

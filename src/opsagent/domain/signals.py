"""Signal naming: which kind of signal a metric is, from its name, and how to normalise it."""

from __future__ import annotations

import re

from opsagent.domain.evidence import MetricSeries, SignalKind

# Ordered: the first pattern that matches decides. Names come from our native format, Prometheus
# signal catalogues and the public datasets' column names.
_RULES: list[tuple[re.Pattern[str], SignalKind]] = [
    # Prometheus' synthetic ``up`` (and ``<prefix>_up``): whether the target answered its scrape
    (re.compile(r"(?:^|[_:])up$"), SignalKind.UP),
    (re.compile(r"restart|oom"), SignalKind.RESTARTS),
    # before the saturation rule's "load": a workload is a request rate
    (re.compile(r"workload"), SignalKind.TRAFFIC),
    (re.compile(r"error|fail|5xx|availability|success"), SignalKind.ERRORS),
    (re.compile(r"lat|duration|response_time|_p\d\d|p50|p90|p95|p99|seconds$"), SignalKind.LATENCY),
    (re.compile(r"cpu"), SignalKind.CPU),
    (re.compile(r"mem|rss|heap"), SignalKind.MEMORY),
    (re.compile(r"disk|filesystem|fs_|inode"), SignalKind.DISK),
    (re.compile(r"network|receive|transmit|packet|bytes_in|bytes_out|net_"), SignalKind.NETWORK),
    (re.compile(r"conn|pool|queue|lag|backlog|thread|saturation|syscall|load|_lod$"), SignalKind.SATURATION),
    (re.compile(r"request|rate|rps|qps|workload|throughput|traffic|ops"), SignalKind.TRAFFIC),
]


def classify_signal(name: str) -> SignalKind:
    lowered = name.lower()
    for pattern, kind in _RULES:
        if pattern.search(lowered):
            return kind
    return SignalKind.OTHER


def unit_of(name: str) -> str:
    lowered = name.lower()
    for suffix, unit in (("_bytes", "bytes"), ("_seconds", "s"), ("_percent", "%"), ("_ratio", "ratio")):
        if lowered.endswith(suffix):
            return unit
    return ""


def series_of(
    service: str, signal: str, timestamps: list[float], values: list[float], *, peer: str | None = None
) -> MetricSeries:
    """A series whose kind and unit follow from its signal's name, as every reader names them."""
    return MetricSeries(
        service=service,
        peer=peer,
        signal=signal,
        kind=classify_signal(signal),
        unit=unit_of(signal),
        timestamps=timestamps,
        values=values,
    )


# Words that put a signal on the client side of a call: what a service measures while it waits for
# the services it calls (Nezha's PodClientLatency*, Istio/Envoy "outbound"/"upstream" stats, an
# "egress" gateway). Such a latency measures the callees, not the service that records it; the
# server side ("server", "inbound", "downstream" in Envoy's sense, or no side at all) is its own.
_CLIENT_WORDS = frozenset({"client", "outbound", "upstream", "egress"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def signal_words(name: str) -> list[str]:
    """The words of a signal name, split at separators and camelCase humps, lowercased."""
    return [w.lower() for w in _WORD.findall(name)]


def is_client_side(name: str) -> bool:
    """Whether the signal is measured by a caller about its outbound calls (see ``_CLIENT_WORDS``)."""
    return any(w in _CLIENT_WORDS for w in signal_words(name))

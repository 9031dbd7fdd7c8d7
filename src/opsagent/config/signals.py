"""The built-in signal catalogues: the PromQL behind each signal the engine reads, per kind of setup."""

from __future__ import annotations

# The signal catalogue: one PromQL template per signal, named like the native format's columns so the
# engine classifies live and recorded series alike. Placeholders {service}, {namespace}, {pod}, {job}
# are filled from the alert's labels as regular expressions (".*" when the alert lacks the label), so
# templates match them with =~. Each default groups by the service label, so one query covers every
# service of the namespace (not just the alert's pod): the engine needs them all to tell a cause from
# its victims. Defaults assume kube-prometheus (cAdvisor, kube-state-metrics) and RED metrics named
# http_requests_total / http_request_duration_seconds with a `service` label.
_RED = 'http_requests_total{namespace=~"{namespace}"}'
_CADVISOR = '{namespace=~"{namespace}",container!="",container!="POD"}'
_AS_SERVICE = '"service", "$1", "container", "(.+)"'
DEFAULT_PROMETHEUS_SIGNALS: dict[str, str] = {
    "request_rate": f"sum by (service) (rate({_RED}[5m]))",
    # "or 0 * total": a service without a single 5xx yet reads 0, not absent, so the minutes before
    # the first error are a normal period to compare with (absent, there is nothing to compare).
    "error_ratio": (
        f'(sum by (service) (rate(http_requests_total{{namespace=~"{{namespace}}",code=~"5.."}}[5m]))'
        f" or 0 * sum by (service) (rate({_RED}[5m])))"
        f" / sum by (service) (rate({_RED}[5m]))"
    ),
    "latency_p50_seconds": (
        "histogram_quantile(0.5, sum by (service, le) "
        '(rate(http_request_duration_seconds_bucket{namespace=~"{namespace}"}[5m])))'
    ),
    "latency_p99_seconds": (
        "histogram_quantile(0.99, sum by (service, le) "
        '(rate(http_request_duration_seconds_bucket{namespace=~"{namespace}"}[5m])))'
    ),
    "cpu_usage_cores": (
        f"sum by (service) (label_replace(rate(container_cpu_usage_seconds_total{_CADVISOR}[5m]), {_AS_SERVICE}))"
    ),
    "memory_bytes": (
        f"sum by (service) (label_replace(container_memory_working_set_bytes{_CADVISOR}, {_AS_SERVICE}))"
    ),
    "restarts_total": (
        "sum by (service) (label_replace(kube_pod_container_status_restarts_total"
        f'{{namespace=~"{{namespace}}"}}, {_AS_SERVICE}))'
    ),
    # The share of a service's scrape targets that answer: 0 when its process is gone (down,
    # refusing connections), which its other series cannot show because they simply stop.
    "target_up": 'avg by (service) (up{namespace=~"{namespace}"})',
    "cpu_throttled_ratio": (
        "sum by (service) (label_replace(rate(container_cpu_cfs_throttled_periods_total"
        f"{_CADVISOR}[5m]), {_AS_SERVICE})) / sum by (service) (label_replace(rate("
        f"container_cpu_cfs_periods_total{_CADVISOR}[5m]), {_AS_SERVICE}))"
    ),
    # Calls per call edge, as a service mesh (Istio) reports them from the caller's side: the caller
    # as `service`, the callee as `peer`. A one-minute rate, so that calls which stop for a few
    # minutes read 0 rather than being averaged away.
    "call_rate_per_second": (
        'sum by (service, peer) (label_replace(label_replace(rate(istio_requests_total{reporter="source",'
        'source_workload_namespace=~"{namespace}"}[1m]), "service", "$1", "source_workload", "(.+)"),'
        ' "peer", "$1", "destination_workload", "(.+)"))'
    ),
}


# The catalogue for services instrumented with a plain Prometheus client library (Python's
# prometheus-client, Go's client_golang, ...) and scraped without Kubernetes: the scrape job names
# the service. It reads the common conventions: `http_requests_total` with a `code` label (the
# status), `http_request_duration_seconds` histograms, the client's own `process_*` metrics, `up`,
# and, for a call graph, `http_client_requests_total` counted by the caller with a `peer` label
# naming the callee. Rates over 1m suit scrape intervals up to 15 s. See docs/LIVE.md.
_JOB = '"service", "$1", "job", "(.+)"'
_REQS = "sum by (job) (rate(http_requests_total[1m]))"
PROMETHEUS_CLIENT_SIGNALS: dict[str, str] = {
    "request_rate": f"label_replace({_REQS}, {_JOB})",
    "error_ratio": (
        f'label_replace((sum by (job) (rate(http_requests_total{{code=~"5.."}}[1m])) or 0 * {_REQS})'
        f" / {_REQS}, {_JOB})"
    ),
    "latency_p50_seconds": (
        "label_replace(histogram_quantile(0.5, sum by (job, le) "
        f"(rate(http_request_duration_seconds_bucket[1m]))), {_JOB})"
    ),
    "latency_p99_seconds": (
        "label_replace(histogram_quantile(0.99, sum by (job, le) "
        f"(rate(http_request_duration_seconds_bucket[1m]))), {_JOB})"
    ),
    "cpu_usage_cores": f"label_replace(sum by (job) (rate(process_cpu_seconds_total[1m])), {_JOB})",
    "memory_bytes": f"label_replace(sum by (job) (process_resident_memory_bytes), {_JOB})",
    # A restart shows as a new process start time.
    "restarts_total": f"label_replace(sum by (job) (changes(process_start_time_seconds[5m])), {_JOB})",
    "target_up": f"label_replace(avg by (job) (up), {_JOB})",
    "call_rate_per_second": (
        f"label_replace(sum by (job, peer) (rate(http_client_requests_total[1m])), {_JOB})"
    ),
}
SIGNAL_CATALOGUES: dict[str, dict[str, str]] = {
    "kubernetes": DEFAULT_PROMETHEUS_SIGNALS,
    "prometheus-client": PROMETHEUS_CLIENT_SIGNALS,
}

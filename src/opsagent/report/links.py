"""The links a report offers: an alert's own (runbook, source, dashboard) and the configured dashboard.

Only http(s) links reach a page: an alert's annotations are text anyone's rule can set.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from opsagent.domain import Investigation


def web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) link, else None."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def alert_links(
    labels: Mapping[str, str], annotations: Mapping[str, str], generator_url: str | None
) -> list[dict[str, str]]:
    """An alert's own links: its runbook_url, its source (Prometheus) and dashboard annotations."""
    out: list[dict[str, str]] = []
    for text, url in (
        ("runbook", annotations.get("runbook_url") or annotations.get("runbook")),
        ("source (generatorURL)", generator_url),
        ("dashboard", annotations.get("dashboard_url") or annotations.get("dashboard")),
    ):
        safe = web_link(url)
        if safe:
            out.append({"text": text, "href": safe})
    return out


def dashboard_link(template: str | None, inv: Investigation) -> str | None:
    """The configured dashboard template filled from the incident (values URL-encoded), or None."""
    if not template:
        return None
    inc = inv.incident
    labels = inc.alerts[0].labels if inc.alerts else {}
    service = (
        (inv.findings.root_causes[0].service if inv.findings.root_causes else None)
        or inc.service_hint
        or labels.get("service", "")
    )
    values = {
        "service": service,
        "namespace": inc.namespace or labels.get("namespace", ""),
        "alertname": labels.get("alertname", ""),
        "start_ms": str(int(inc.window.start.timestamp() * 1000)),
        "end_ms": str(int(inc.window.end.timestamp() * 1000)),
        "start": inc.window.start.isoformat(),
        "end": inc.window.end.isoformat(),
    }
    try:
        return web_link(template.format_map({k: quote(v, safe="") for k, v in values.items()}))
    except (KeyError, IndexError, ValueError):
        return None

"""What on-call reads first in a report: the alert's labels, severity, start and links, a dashboard
link from the configured template, and the diagnostics' own per-command status."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from opsagent.commands.investigate import investigate_recorded
from opsagent.config import Settings
from opsagent.report import command_status, dashboard_link, to_json, to_markdown

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (
    "https://grafana.example.com/d/svc?var-service={service}&var-ns={namespace}&from={start_ms}&to={end_ms}"
)


@pytest.fixture(scope="module")
def inv(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("d"), embedding="hashing", runbooks_dir=ROOT / "runbooks"
    )
    return investigate_recorded(ROOT / "examples" / "incidents" / "bad-deploy-errors", settings, "offline")


def test_alerts_carry_labels_severity_start_and_links(inv):
    report = to_json(inv, dashboard_url=TEMPLATE)
    [alert] = report["incident"]["alerts"]
    assert alert["severity"] == "critical" and alert["labels"]["service"] == "checkout"
    assert alert["starts_at"].startswith("2026-11-23T16:36:33")
    assert alert["runbook_url"] == "http://runbooks.local/slo-burn"
    assert alert["generator_url"].startswith("http://prometheus.monitoring.svc:9090/graph?")
    texts = [link["text"] for link in report["links"]]
    assert texts[0] == "dashboard" and "runbook" in texts and "source (generatorURL)" in texts
    dashboard = report["links"][0]["href"]
    top = inv.findings.root_causes[0].service
    assert dashboard.startswith(f"https://grafana.example.com/d/svc?var-service={top}&var-ns=shop&from=")
    markdown = to_markdown(inv, dashboard_url=TEMPLATE)
    assert (
        f"Dashboard: {dashboard}" in markdown and "## Alerts" in markdown and "severity=critical" in markdown
    )


def test_only_web_links_are_kept(inv):
    alert = inv.incident.alerts[0]
    bad = alert.model_copy(
        update={"annotations": {"runbook_url": "javascript:alert(1)"}, "generator_url": ""}
    )
    other = inv.model_copy(update={"incident": inv.incident.model_copy(update={"alerts": [bad]})})
    assert to_json(other)["links"] == []
    assert dashboard_link("javascript:{service}", inv) is None
    assert dashboard_link("https://x/{nope}", inv) is None  # an unknown placeholder: no link, no crash


def test_diagnostics_report_each_command_status():
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "actions" / "collect-diagnostics"), "--service", "orders"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    statuses = command_status(out.stdout)
    assert statuses, out.stdout
    # Whatever this machine has (no kubectl, or kubectl without a cluster), each command says how it ended.
    for s in statuses:
        assert s["ok"] is (s["status"] == 0)
    assert "-- summary: " in out.stdout

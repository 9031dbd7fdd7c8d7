"""The web console in a real browser (Debian's Chromium driven by Playwright), against a real server.

The server runs ``create_app`` with the evidence of a recorded incident replayed through the
``EvidenceSource`` seam; the incident itself arrives as its Alertmanager payload on the webhook.
Every request the pages make is recorded: none may leave the machine.

``OPSAGENT_CONSOLE_SCREENSHOTS=DIR`` also saves screenshots of the main pages there (docs/console/).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from opsagent.config import Settings
from opsagent.evals.native import load_native
from opsagent.evals.replay import replay_sources

from ...support.sinks import Sink, webhook_sink
from ..conftest import ROOT, TOKENS, WEBHOOK_TOKEN, LiveServer, auth

pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No first-run work, no component or safe-browsing updates, no sync: the browser itself must not
# reach for the network either, so that the request log below is the pages' own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RECORDING = ROOT / "examples" / "incidents" / "bad-deploy-errors"
SHOTS = os.environ.get("OPSAGENT_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    """A chat webhook (Slack stand-in): a real local HTTP endpoint recording what it receives."""
    with webhook_sink() as rec:
        yield rec


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("console")
    reports = data / "reports"
    reports.mkdir()
    # A real evaluation report of the bundled examples, for the evaluations page.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env.update(OPSAGENT_EMBEDDING="hashing", OPSAGENT_DATA_DIR=str(data / "eval"))
    subprocess.run(
        [
            str(Path(sys.executable).with_name("opsagent")),
            "eval",
            str(ROOT / "examples" / "incidents"),
            "--json",
            str(reports / "examples.json"),
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=240,
    )
    settings = Settings(
        data_dir=data,
        runbooks_dir=ROOT / "runbooks",
        embedding="hashing",
        webhook_token=WEBHOOK_TOKEN,
        api_tokens=[{"name": r, "token": t, "role": r} for r, t in TOKENS.items()],
        worker_mode="thread",
        autonomy_level="L2",
        autonomy={"dry_run": True},
        console={"reports_dir": reports, "dashboard_url": "http://grafana.local/d/svc?var-service={service}"},
        notify={"webhooks": [{"url": sink.url, "format": "slack"}, {"url": sink.url}]},
    )
    live = LiveServer(settings, replay_sources(load_native(RECORDING)))
    # Links in notifications point at this server's console.
    settings.notify.base_url = live.url
    with live:
        yield live


@pytest.fixture(scope="module")
def incident_id(server: LiveServer) -> str:
    """The recorded incident, delivered as Alertmanager delivers it, investigated to the end."""
    payload = yaml.safe_load((RECORDING / "incident.yaml").read_text())["alert"]
    answer = httpx.post(
        f"{server.url}/v1/alerts/alertmanager",
        json=payload,
        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    )
    assert answer.status_code == 202, answer.text
    inc: str = answer.json()["incident_ids"][0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        actions = httpx.get(f"{server.url}/v1/actions", params={"incident_id": inc}, headers=auth("viewer"))
        if any(a["status"] == "pending" for a in actions.json()["items"]):
            return inc
        time.sleep(0.3)
    raise AssertionError("the investigation left no action awaiting approval")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (bash scripts/install-system-deps.sh)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Visit:
    """A browser context that records every request its pages make."""

    def __init__(self, browser: Browser) -> None:
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page: Page = self.context.new_page()

    def sign_in(self, base: str, role: str, start: str = "/") -> Page:
        page = self.page
        page.goto(base + start)
        expect(page).to_have_url(re.compile(r"/login"))
        page.fill("input[name=token]", TOKENS[role])
        page.click("button[type=submit]")
        expect(page.locator("#who")).to_contain_text(f"({role})")
        return page

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser, server: LiveServer) -> Iterator[Visit]:
    v = Visit(browser)
    yield v
    v.close()
    # No page may reach anything but this server: no CDN, no font, no analytics.
    local = urlsplit(server.url).netloc
    strays = [u for u in v.requests if not u.startswith(("data:", "about:")) and urlsplit(u).netloc != local]
    assert strays == [], f"requests leaving the machine: {strays}"
    assert v.requests, "the pages made no request at all"


def test_the_investigation_finished_message_opens_the_incident_in_a_browser(
    visit: Visit, server: LiveServer, incident_id: str, sink: Sink
):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len([b for b in sink.bodies if "kind" in b]) < 1:
        time.sleep(0.2)
    [generic] = [b for b in sink.bodies if b.get("kind") == "investigation_finished"]
    url = f"{server.url}/incidents/{incident_id}"
    assert generic["url"] == url and generic["top_cause"] == "payment" and generic["confidence"] > 0
    # Title, then the top cause with its evidence on one line, then the link.
    lines = generic["text"].split("\n")
    title, line, link = lines[0], lines[1], lines[-1]
    assert "likely payment" in title and link == url
    assert line.startswith("Top cause: payment (") and "Evidence: " in line
    slack = [b for b in sink.bodies if "blocks" in b and "likely payment" in b["text"]]
    assert slack and f"<{url}|Open incident {incident_id}>" in slack[0]["text"]
    # The link in a browser: sign in first, then the incident itself.
    page = visit.page
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=token]", TOKENS["viewer"])
    page.click("button[type=submit]")
    expect(page).to_have_url(url)
    expect(page.locator("article.cause[data-rank='1'] .cause-service")).to_have_text("payment")


def test_root_without_a_session_goes_to_sign_in(server: LiveServer):
    answer = httpx.get(server.url + "/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_sign_in_open_the_incident_see_the_top_cause_and_its_chart(
    visit: Visit, server: LiveServer, incident_id: str
):
    page = visit.sign_in(server.url, "responder")
    expect(page).to_have_url(re.compile(r"/incidents$"))
    row = page.locator(f"tr[data-incident='{incident_id}']")
    expect(row).to_contain_text("ErrorBudgetBurn")
    expect(row).to_contain_text("payment")  # the top cause, in the list already
    visit.shot("incidents")
    row.locator("a").click()
    expect(page).to_have_url(re.compile(f"/incidents/{incident_id}$"))
    top = page.locator("article.cause[data-rank='1']")
    expect(top.locator(".cause-service")).to_have_text("payment")
    chart = top.locator("svg.chart").first
    expect(chart).to_be_visible()
    # Incident against normal period, the onset marked.
    assert chart.locator("path.line.normal").count() == 1
    assert chart.locator("path.line.incident").count() == 1
    expect(chart.locator("text.onset-label")).to_contain_text("onset")
    # What on-call looks for first: the alert's labels and links, the runbook, the timeline.
    alerts = page.locator("#alerts")
    expect(alerts).to_contain_text("severity=critical")
    expect(alerts.locator("a", has_text="runbook")).to_have_attribute(
        "href", "http://runbooks.local/slo-burn"
    )
    expect(alerts.locator("a", has_text="generatorURL")).to_have_count(1)
    expect(page.locator("a.button", has_text="dashboard")).to_have_attribute(
        "href", "http://grafana.local/d/svc?var-service=payment"
    )
    expect(page.locator("#runbook")).to_contain_text("bad-deploy-error-rate")
    expect(page.locator("#runbook .runbook h1, #runbook .runbook h2").first).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("investigation done")
    expect(page.locator("#audit")).to_contain_text("action_")
    visit.shot("incident")


def _pending_row(page: Page) -> Any:
    return page.locator("#actions tr", has=page.locator("form[action$='/approve']"))


def test_a_viewer_cannot_approve(visit: Visit, server: LiveServer, incident_id: str):
    page = visit.sign_in(server.url, "viewer", f"/incidents/{incident_id}")
    expect(page).to_have_url(re.compile(f"/incidents/{incident_id}$"))
    buttons = page.locator("#actions button.approve")
    expect(buttons.first).to_be_disabled()
    row = page.locator("#actions tr[data-request]", has=page.locator("button.approve")).first
    request_id = row.get_attribute("data-request")
    # Even a hand-made form post with the viewer's own CSRF token is refused by the server.
    status = page.evaluate(
        """async ([url]) => {
            const body = new URLSearchParams({csrf: document.body.dataset.csrf, reason: "try"});
            const res = await fetch(url, {method: "POST", body, credentials: "same-origin"});
            return [res.status, await res.text()];
        }""",
        [f"/incidents/{incident_id}/actions/{request_id}/approve"],
    )
    assert status[0] == 403 and "needs the responder role" in status[1]
    still = httpx.get(f"{server.url}/v1/actions/{request_id}", headers=auth("viewer")).json()
    assert still["status"] == "pending"


def test_a_post_without_the_csrf_token_is_refused(visit: Visit, server: LiveServer, incident_id: str):
    page = visit.sign_in(server.url, "responder", f"/incidents/{incident_id}")
    status = page.evaluate(
        """async ([url]) => (await fetch(url, {method: "POST", body: new URLSearchParams({csrf: "forged"}),
                                              credentials: "same-origin"})).status""",
        [f"/incidents/{incident_id}/investigate"],
    )
    assert status == 403


def test_a_responder_approves_an_action(visit: Visit, server: LiveServer, incident_id: str):
    page = visit.sign_in(server.url, "responder", f"/incidents/{incident_id}")
    row = _pending_row(page).first
    action = row.get_attribute("data-action")
    request_id = row.get_attribute("data-request")
    row.locator("input[name=reason]").first.fill("rollback looks right")
    row.locator("button.approve").click()
    expect(page.locator(".flash")).to_contain_text(f"Approved {action}")
    done = page.locator(f"#actions tr[data-request='{request_id}'] .action-status")
    expect(done).not_to_contain_text("awaits approval")
    # Dry run (the server's setting here): approved and gone through the runner, nothing changed.
    expect(done).to_contain_text("dry run")
    decided = httpx.get(f"{server.url}/v1/actions/{request_id}", headers=auth("viewer")).json()
    assert decided["decided_by"] == "responder" and decided["status"] != "pending"
    expect(page.locator("#audit")).to_contain_text("rollback looks right")


def test_chat_on_the_incident_streams_an_answer(visit: Visit, server: LiveServer, incident_id: str):
    page = visit.sign_in(server.url, "responder", f"/incidents/{incident_id}")
    page.fill("#chat-form textarea", "What is the likely cause?")
    page.click("#chat-form button")
    answer = page.locator("#chat-log .msg.assistant[data-done='1']").last
    expect(answer).to_contain_text("payment", timeout=60_000)
    # A follow-up continues the same conversation, bound to the incident.
    page.fill("#chat-form textarea", "And what should I do first?")
    page.click("#chat-form button")
    expect(page.locator("#chat-log .msg.assistant[data-done='1']")).to_have_count(2, timeout=60_000)
    visit.shot("incident-chat")
    page.reload()
    expect(page.locator("#chat-log .msg.user")).to_have_count(2)


def test_incident_list_filters_and_live_updates(visit: Visit, server: LiveServer, incident_id: str):
    page = visit.sign_in(server.url, "viewer")
    page.select_option("select[name=status]", "resolved")
    page.click("form.filters button")
    expect(page.locator("#incident-rows")).to_contain_text("No incidents match")
    page.goto(server.url + "/incidents")
    # A new alert shows up without a reload.
    payload = yaml.safe_load((ROOT / "tests/fixtures/alertmanager/03-firing-PodOOMKilled.json").read_text())
    httpx.post(
        f"{server.url}/v1/alerts/alertmanager",
        json=payload,
        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    ).raise_for_status()
    expect(page.locator("#incident-rows")).to_contain_text("PodOOMKilled", timeout=15_000)


def test_evaluation_reports_and_offline_api_docs(visit: Visit, server: LiveServer):
    page = visit.sign_in(server.url, "viewer", "/evals")
    expect(page.locator("table.list")).to_contain_text("examples.json")
    visit.shot("evaluations")
    page.click("a[href='/evals/examples.json']")
    expect(page.locator("body")).to_contain_text("3 cases")
    page.goto(server.url + "/docs")
    expect(page.locator("h1")).to_contain_text("opsagent API")
    expect(page.locator("code", has_text="/v1/alerts/alertmanager").first).to_be_visible()

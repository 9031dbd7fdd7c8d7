"""The first run as the README shows it, from an empty folder: `opsagent users create` prints a
token alone on its last line, `opsagent serve` starts without a runbooks/ folder (the bundled ones),
accepts that token, sends a browser to the sign-in page, and /readyz names the missing sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..support.servers import free_port, wait_http

OPSAGENT = str(Path(sys.executable).with_name("opsagent"))
ROOT = Path(__file__).resolve().parents[2]


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env.update(OPSAGENT_DATA_DIR=str(data), OPSAGENT_EMBEDDING="hashing", OPSAGENT_WORKER_MODE="thread")
    return env


def test_users_create_then_serve_from_an_empty_folder(tmp_path: Path):
    cwd = tmp_path / "anywhere"
    cwd.mkdir()
    env = _env(tmp_path / "data")
    created = subprocess.run(
        [OPSAGENT, "users", "create", "alice", "--role", "admin"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert token.startswith("oa_") and " " not in token
    again = subprocess.run(
        [OPSAGENT, "users", "create", "alice", "--role", "admin"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    listed = subprocess.run([OPSAGENT, "users", "list"], cwd=cwd, env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and listed.stdout.split()[:3] == ["alice", "admin", "active"]
    bad = subprocess.run(
        [OPSAGENT, "users", "create", "bob", "--role", "root"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown role 'root'" in bad.stderr

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [OPSAGENT, "serve", "--port", str(port), "--log-level", "warning"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", 120, proc=proc, log=log)
        me = httpx.get(base + "/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json() == {"name": "alice", "role": "admin"}
        home = httpx.get(base + "/", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"].startswith("/login")
        ready = httpx.get(base + "/readyz").json()
        assert ready["status"] == "ok" and ready["checks"]["evidence"].startswith("none configured")
        # No evidence source configured: an investigation names that gap instead of an empty "all clear".
        payload = json.loads(
            (ROOT / "tests" / "fixtures" / "alertmanager" / "01-firing-HighErrorRate.json").read_text()
        )
        posted = httpx.post(
            base + "/v1/alerts/alertmanager", json=payload, headers={"Authorization": f"Bearer {token}"}
        )
        assert posted.status_code == 202, posted.text
        incident = posted.json()["incident_ids"][0]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            detail = httpx.get(
                f"{base}/v1/incidents/{incident}", headers={"Authorization": f"Bearer {token}"}
            ).json()
            if detail["findings"] is not None:
                break
            time.sleep(0.3)
        assert any(g["source"] == "evidence sources" for g in detail["gaps"]), detail["gaps"]
        assert f"web console: http://127.0.0.1:{port}/" in log.read_text()
        docs = httpx.get(base + "/docs")
        assert docs.status_code == 200 and "/v1/alerts/alertmanager" in docs.text and "cdn" not in docs.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

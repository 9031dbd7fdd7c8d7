"""How quickly the web console answers, and how much it sends (``api/ui``).

    python -m bench console

Starts the service in this process on a free loopback port with the evidence of the bundled example
``examples/incidents/bad-deploy-errors`` replayed, delivers its Alertmanager payload, waits for the
investigation, signs in, then times 20 requests of each page and prints median and slowest time,
the page's size and the number of evidence charts on the incident page.
"""

from __future__ import annotations

import re
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
import yaml

from opsagent.api import create_app
from opsagent.config import Settings
from opsagent.evals.native import load_native
from opsagent.evals.replay import replay_sources

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "examples" / "incidents" / "bad-deploy-errors"
REPEATS = 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            runbooks_dir=ROOT / "runbooks",
            embedding="hashing",
            webhook_token="bench-webhook",
            api_tokens=[{"name": "bench", "token": "bench-token", "role": "responder"}],
            worker_mode="thread",
            autonomy_level="L2",
            autonomy={"dry_run": True},
        )
        port = _port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, sources=replay_sources(load_native(RECORDING))),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            payload = yaml.safe_load((RECORDING / "incident.yaml").read_text())["alert"]
            incident = httpx.post(
                f"{base}/v1/alerts/alertmanager",
                json=payload,
                headers={"Authorization": "Bearer bench-webhook"},
            ).json()["incident_ids"][0]
            with httpx.Client(base_url=base, timeout=60) as client:
                nonce = re.search(r'name="nonce" value="([^"]+)"', client.get("/login").text)
                assert nonce is not None
                client.post("/login", data={"nonce": nonce.group(1), "token": "bench-token"})
                deadline = time.monotonic() + 120
                while "Under way" in client.get(f"/incidents/{incident}").text or (
                    "No finished investigation" in client.get(f"/incidents/{incident}").text
                ):
                    if time.monotonic() > deadline:
                        print("the investigation did not finish in 120 s")
                        return 1
                    time.sleep(0.3)
                for name, path in (
                    ("incident page", f"/incidents/{incident}"),
                    ("incidents list", "/incidents"),
                    ("API docs", "/docs"),
                ):
                    client.get(path)
                    times = []
                    for _ in range(REPEATS):
                        started = time.perf_counter()
                        answer = client.get(path)
                        times.append(time.perf_counter() - started)
                    print(
                        f"{name}: HTTP {answer.status_code}, {len(answer.content) / 1024:.0f} KiB, median "
                        f"{statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms "
                        f"({REPEATS} requests)"
                    )
                charts = client.get(f"/incidents/{incident}").text.count('<svg class="chart"')
                print(f"evidence charts on the incident page: {charts}")
                return 0 if charts else 1
        finally:
            server.should_exit = True
            thread.join(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())

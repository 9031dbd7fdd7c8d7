"""The live lab end to end, once: the whole lab up, one fault, its alert through Prometheus and
Alertmanager to ``opsagent serve``, a finished investigation, the case recorded and replayed, the lab
down with every process gone.

Runs the lab in its own state folder and port range (``LAB_STATE``, ``LAB_BASE_PORT``: a free
block above the labs' 27100-27399, see ``smoke_ports``), so it neither meets nor disturbs a lab
someone is running. A few minutes: the alert rules hold for a minute, as real rules do.
Accuracy is not asserted here (one fault after one minute of history is not a
measurement); the campaign command measures it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .smoke_ports import free_block

ROOT = Path(__file__).resolve().parents[2]
NEEDED = (
    "prometheus",
    "prometheus-alertmanager",
    "nginx",
    "redis-server",
    "prometheus-node-exporter",
    "prometheus-process-exporter",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
    "prometheus-nginx-exporter",
)
PG_BIN = Path(os.environ.get("LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _missing() -> list[str]:
    missing = [n for n in NEEDED if shutil.which(n) is None and not Path("/usr/sbin", n).exists()]
    if not (PG_BIN / "pg_ctl").exists():
        missing.append(str(PG_BIN / "pg_ctl"))
    return missing


@pytest.fixture
def lab_env():
    missing = _missing()
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)} (scripts/install-system-deps.sh)")
    # Under the repository; when the clone sits in a folder closed to others (mktemp -d), the lab
    # keeps PostgreSQL's data under /var/tmp instead, and `down --purge` deletes it.
    state = ROOT / ".lab" / f"smoke-{os.getpid()}"
    # Its own block above the labs people run (27100-27399), and only one that is free right now.
    base = os.environ.get("LAB_SMOKE_BASE_PORT") or str(free_block() or "")
    if not base:
        pytest.skip("no free block of lab ports in 27400-27999")
    env = {
        **os.environ,
        "LAB_STATE": str(state),
        "LAB_BASE_PORT": base,
        # The working tree as it is: the test checks this tree's opsagent, committed or not.
        "LAB_OPSAGENT_SOURCE": "tree",
    }
    yield state, env
    started = _pids(state)
    down = subprocess.run(
        [sys.executable, "-m", "lab", "down", "--purge"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    leftover = [p for p in (state / "run").glob("*.pid")] if (state / "run").exists() else []
    shutil.rmtree(state, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert not leftover, f"pid files left after down: {leftover}"
    assert not [pid for pid in started if _alive(pid)], "processes still running after `lab down`"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _pids(state: Path) -> list[int]:
    pids = []
    for path in (state / "run").glob("*.pid"):
        try:
            pids.append(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def test_one_fault_end_to_end(lab_env):
    state, env = lab_env
    out = state / "campaign.json"
    cases = state / "cases"
    done = subprocess.run(
        [
            sys.executable, "-m", "lab", "campaign", "--only", "errors:payment", "--warmup", "45",
            "--cap", "240", "--recovery", "10", "--out", str(out), "--cases", str(cases),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=780,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(out.read_text())
    for key in (
        "faults",
        "ac@1",
        "ac@3",
        "type",
        "alert_to_findings_p50_s",
        "alerts_sent",
        "alerts_received",
    ):
        assert key in doc, key
    assert doc["faults"] == 1
    (case,) = doc["cases"]
    assert {"kind", "target", "top", "rank_of_truth", "fault_to_alert_s", "alert_to_findings_s"} <= set(case)
    assert (case["kind"], case["target"]) == ("errors", "payment")
    # The live path ran: an alert fired after the rule's `for: 1m`, reached opsagent, and an
    # investigation started by it finished.
    assert case["error"] is None, case
    assert case["fault_to_alert_s"] >= 60
    assert case["alert_to_findings_s"] is not None and case["alert_to_findings_s"] >= 0
    assert doc["alerts_sent"] >= 1 and doc["alerts_received"] == doc["alerts_sent"]
    # The case was recorded with its truth, and `opsagent eval` replayed it.
    recorded = Path(case["recorded"])
    spec = (recorded / "incident.yaml").read_text()
    assert "service: payment" in spec and "fault_type: errors-code" in spec
    assert any((recorded / "metrics").glob("*.csv"))
    assert doc["replay"]["replayed"] == 1
    # Every part of the lab runs under a PID the lab wrote down (the fixture then stops them).
    assert len(_pids(state)) >= 19

"""The harness's time per case is end to end, and a case leaves the garbage collector as it found it."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from opsagent.config import Settings
from opsagent.evals import harness
from opsagent.evals.discover import discover

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "incidents" / "db-pool-exhaustion"
ROUNDING = 0.5e-4  # half the 4th decimal the harness rounds its seconds to


@pytest.fixture
def services(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    settings = Settings(data_dir=tmp_path / "data", runbooks_dir=REPO / "runbooks", embedding="hashing")
    return harness.build_eval_services(settings, "offline")


def test_seconds_cover_reading_the_recording_and_the_investigation(services):
    [ref] = discover(DEMO)
    began = time.perf_counter()
    result = harness.run_case(ref, services)
    wall = time.perf_counter() - began
    assert result.error is None and result.ranking
    # the case's seconds are rounded to 0.1 ms (``harness._run_case``): rounded up, they may pass the
    # wall time measured around the call by up to half of that
    assert 0.0 < result.load_seconds < result.seconds <= wall + ROUNDING
    # the whole call but its bookkeeping: a time that left the loading out would miss all of it
    assert wall - result.seconds < 0.5 * result.load_seconds


def test_a_case_unfreezes_what_it_froze(services):
    [ref] = discover(DEMO)
    assert gc.get_freeze_count() == 0
    harness.run_case(ref, services)
    assert gc.get_freeze_count() == 0

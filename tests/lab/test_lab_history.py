"""How long the lab has run: a Prometheus history kept from an earlier `up` is no normal period."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from lab import layout, stack


def _spawned(name: str, seconds_ago: float, pid: int) -> None:
    path = stack.pid_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(pid))
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_the_newest_running_start_bounds_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "STATE", tmp_path / ".lab")
    _spawned("prometheus", 3600, os.getpid())
    _spawned("cart", 40, os.getpid())
    # a part that is not running any more (its pid is gone) does not count, however recent
    _spawned("frontend", 5, 2**22 + 1)
    assert stack.seconds_since_start(["prometheus", "cart", "frontend"]) == pytest.approx(40, abs=5)
    assert stack.seconds_since_start(["prometheus"]) == pytest.approx(3600, abs=5)
    assert stack.seconds_since_start(["frontend"]) == math.inf
